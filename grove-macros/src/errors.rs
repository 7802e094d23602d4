//! Collecting every error of one expansion, so the user sees all of them at once.

use proc_macro2::TokenStream;

/// All errors found so far, combined into one `syn::Error`.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn push_spanned(
        &mut self,
        tokens: impl quote::ToTokens,
        message: impl std::fmt::Display,
    ) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// `Ok` when nothing was pushed, else the `compile_error!`s for all of them.
    pub(crate) fn finish(self) -> Result<(), TokenStream> {
        match self.0 {
            None => Ok(()),
            Some(error) => Err(error.to_compile_error()),
        }
    }
}
