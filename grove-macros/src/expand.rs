//! Turning a validated struct into the struct plus its export glue.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemStruct, parse_quote};

use crate::errors::Errors;
use crate::{fallback, fields, parse, validate};

/// The whole attribute (see [`fallback::or_errors`]).
pub(crate) fn module(attr: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = parse::options(attr, &mut errors);
    if let Some(name) = &options.name {
        validate::name(name, &mut errors);
    }
    fallback::or_errors(
        input,
        errors,
        |item, errors| validate::item(&item, errors),
        |item| expand(&options, item),
    )
}

/// The struct with serde's derives, and next to it one check per requirement and the glue.
///
/// Each requirement of a module is checked once, spanned at the author's tokens: `Module`
/// and `Default` at the type's name, serde at each field's type. The serde impls and the
/// glue state the same requirements as `for<'__grove>` bounds (or bounds on serde's `'de`),
/// which rustc does not report, so a missing piece is one error, not one per use.
fn expand(options: &parse::Options, mut item: ItemStruct) -> TokenStream {
    let krate = options
        .krate
        .clone()
        .unwrap_or_else(|| parse_quote!(::grove));
    let krate_str = quote!(#krate).to_string().replace(' ', "");
    let ident = item.ident.clone();
    let type_name = ident.to_string();
    let name = options
        .name
        .as_ref()
        .map(|n| n.value())
        .unwrap_or_else(|| snake_case(&type_name));
    let suffix = symbol_suffix(
        &std::env::var("CARGO_CRATE_NAME").unwrap_or_default(),
        &type_name,
    );
    let header_symbol = format!("grove_module_header__{suffix}");
    let create_symbol = format!("grove_create_module__{suffix}");

    let serde_path = format!("{krate_str}::__private::serde");
    let default_path = format!("{krate_str}::__private::default_state");
    let default_bound = format!("for<'__grove> {ident}: {krate_str}::__private::ModuleDefault");
    // Spanned at the user's type, so a missing `impl Module` or `Default` points there.
    let assert_module = quote_spanned!(ident.span()=> #krate::__private::assert_module::<#ident>());

    let mut field_checks = Vec::new();
    let mut field_bounds = Vec::new();
    for field in fields::state_fields(&item) {
        field_checks.push(field.check());
        field_bounds.push((field.index, field.serde_bound(&krate_str)));
    }
    // In a closure: the checks pick a method by the field's type, and const code cannot call
    // trait methods. The closure is never called; it only has to type-check.
    let field_checks = (!field_checks.is_empty()).then(|| {
        quote! {
            let _ = || {
                use #krate::__private::{Saved as _, StateField as __GroveStateField, Unsaved as _};
                #(#field_checks)*
            };
        }
    });
    for (index, bound) in field_bounds {
        let field = item
            .fields
            .iter_mut()
            .nth(index)
            .expect("the index of a field");
        field.attrs.push(bound);
    }

    // Spanned at the config type, so a missing `impl Configure` (or another `Config` type
    // in it) points there.
    let configure = match &options.config {
        Some(config) => quote_spanned!(config.span()=>
            ::core::option::Option::Some(#krate::__private::configure::<#ident, #config>)
        ),
        None => quote!(::core::option::Option::None),
    };

    let version = match &options.version {
        Some(version) => quote!(#version),
        None => quote!(1),
    };

    quote! {
        #[derive(#krate::__private::serde::Serialize, #krate::__private::serde::Deserialize)]
        #[serde(
            crate = #serde_path,
            default = #default_path,
            bound(deserialize = #default_bound),
        )]
        #item

        #[automatically_derived]
        const _: () = {
            #assert_module;
            #field_checks
            impl #krate::__private::ModuleConfig for #ident {
                const CONFIGURE: ::core::option::Option<#krate::abi::ConfigureFn> = #configure;
            }
            impl #krate::__private::ModuleVersion for #ident {
                const VERSION: u32 = #version;
            }
            #krate::__grove_export! {
                type = #ident,
                name = #name,
                type_name = #type_name,
                header_symbol = #header_symbol,
                create_symbol = #create_symbol,
            }
        };
    }
}

/// `PlayerController` -> `player_controller`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.extend(c.to_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// The part of the exported symbol names that makes them unique within a binary.
fn symbol_suffix(crate_name: &str, type_name: &str) -> String {
    let crate_name = if crate_name.is_empty() {
        "crate"
    } else {
        crate_name
    };
    format!("{crate_name}__{type_name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_cases_type_names() {
        assert_eq!(snake_case("Counter"), "counter");
        assert_eq!(snake_case("PlayerController"), "player_controller");
        assert_eq!(snake_case("Hello2D"), "hello2_d");
    }

    #[test]
    fn errors_keep_the_item() {
        let out = module(
            quote!(bogus = 1),
            quote!(
                struct A {
                    x: u32,
                }
            ),
        )
        .to_string();
        assert!(out.contains("struct A"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(!out.contains("__grove_export"), "{out}");
    }

    #[test]
    fn symbols_are_unique_per_crate_and_type() {
        assert_ne!(symbol_suffix("a", "M"), symbol_suffix("b", "M"));
        assert_eq!(symbol_suffix("", "M"), "crate__M");
    }
}
