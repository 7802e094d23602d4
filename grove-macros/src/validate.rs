//! Checking that the attribute sits on something that can be a module.

use syn::{Fields, Item, ItemStruct, LitStr};

use crate::errors::Errors;

/// The struct the attribute is on, when it can be a module; every problem goes to `errors`.
pub(crate) fn item(item: &Item, errors: &mut Errors) -> Option<ItemStruct> {
    let item = match item {
        Item::Struct(s) => s,
        Item::Enum(e) => {
            errors.push_spanned(
                e.enum_token,
                "#[grove::module] goes on a struct with named fields, not on an enum: \
                 wrap the enum in a struct field",
            );
            return None;
        }
        Item::Union(u) => {
            errors.push_spanned(
                u.union_token,
                "#[grove::module] goes on a struct with named fields, not on a union",
            );
            return None;
        }
        other => {
            errors.push_spanned(other, "#[grove::module] goes on a struct with named fields");
            return None;
        }
    };
    let mut ok = true;
    match &item.fields {
        Fields::Named(_) => {}
        Fields::Unnamed(fields) => {
            ok = false;
            errors.push_spanned(
                fields,
                "#[grove::module] needs named fields: state is restored by field name when \
                 the schema changes; write `struct Name { field: Type }`",
            );
        }
        Fields::Unit => {
            ok = false;
            errors.push_spanned(
                &item.ident,
                "#[grove::module] needs a struct with named fields; for a module with no \
                 state write `struct Name {}`",
            );
        }
    }
    if !item.generics.params.is_empty() {
        ok = false;
        errors.push_spanned(
            &item.generics,
            "a module cannot be generic: its library exports one concrete type; \
             remove the generic parameters (use a type alias inside the struct's fields instead)",
        );
    }
    for attr in &item.attrs {
        if !attr.path().is_ident("derive") {
            continue;
        }
        let _ = attr.parse_nested_meta(|meta| {
            let last = meta.path.segments.last().map(|s| s.ident.to_string());
            if matches!(last.as_deref(), Some("Serialize" | "Deserialize")) {
                ok = false;
                errors.push_spanned(
                    &meta.path,
                    "#[grove::module] derives Serialize and Deserialize itself: remove this derive",
                );
            }
            Ok(())
        });
    }
    ok.then(|| item.clone())
}

/// Checks a `name = "..."`: letters, digits, `_` and `-`, as it appears in logs and paths.
pub(crate) fn name(name: &LitStr, errors: &mut Errors) {
    let value = name.value();
    let valid = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        errors.push_spanned(
            name,
            "a module name is made of ASCII letters, digits, `_` and `-`, e.g. `name = \"player_controller\"`",
        );
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn check(tokens: proc_macro2::TokenStream) -> Result<(), String> {
        let mut errors = Errors::default();
        let parsed: Item = syn::parse2(tokens).unwrap();
        item(&parsed, &mut errors);
        errors.finish().map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_a_named_struct() {
        check(quote!(pub struct A { x: u32 })).unwrap();
        check(quote!(pub struct A {})).unwrap();
    }

    #[test]
    fn reports_every_problem() {
        let err = check(quote!(#[derive(Default, serde::Serialize)] struct A<T>(T);)).unwrap_err();
        assert!(err.contains("named fields"), "{err}");
        assert!(err.contains("cannot be generic"), "{err}");
        assert!(err.contains("remove this derive"), "{err}");
    }

    #[test]
    fn names_are_checked() {
        let mut errors = Errors::default();
        name(&syn::parse_quote!("has space"), &mut errors);
        assert!(errors.finish().is_err());
    }
}
