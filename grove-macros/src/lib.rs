//! The `#[grove::module]` attribute. An implementation detail of `grove-sdk`, which
//! re-exports it as `grove::module`: depend on `grove-sdk`, not on this crate.
//!
//! The logic lives in plain `proc_macro2` functions (parse -> validate -> expand) so it can
//! be unit-tested; this file only bridges to the compiler.

mod errors;
mod expand;
mod fallback;
mod fields;
mod parse;
mod state;
mod validate;

use proc_macro::TokenStream;

// Documented where grove-sdk re-exports it (`grove::module`): rustdoc appends these docs
// to those, so a line here would be read there.
#[allow(missing_docs)]
#[proc_macro_attribute]
pub fn module(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::module(attr.into(), item.into()).into()
}

// Documented where grove-sdk re-exports it (`grove::state`), as `module` is.
#[allow(missing_docs)]
#[proc_macro_attribute]
pub fn state(attr: TokenStream, item: TokenStream) -> TokenStream {
    state::state(attr.into(), item.into()).into()
}
