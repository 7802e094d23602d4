//! Checking that the attribute sits on something that can be a module.

use syn::{Attribute, Fields, GenericParam, Item, ItemStruct, LitStr};

use crate::errors::Errors;
use crate::parse;

/// The struct the attribute is on, when it can be a module; every problem goes to `errors`.
pub(crate) fn item(item: &Item, errors: &mut Errors) -> Option<ItemStruct> {
    let item = match item {
        Item::Struct(s) => s,
        Item::Enum(e) => {
            errors.push_spanned(
                e.enum_token,
                "#[grove::module] goes on a struct with named fields, not on an enum: \
                 make the enum a field of a struct",
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
    let ident = &item.ident;
    match &item.fields {
        Fields::Named(_) => {}
        Fields::Unnamed(fields) => {
            ok = false;
            errors.push_spanned(
                fields,
                format!(
                    "#[grove::module] needs named fields: state is restored by field name \
                     when the fields change; write `struct {ident} {{ name: Type }}`"
                ),
            );
        }
        Fields::Unit => {
            ok = false;
            errors.push_spanned(
                ident,
                format!(
                    "#[grove::module] needs a struct with named fields; for a module with no \
                     state write `struct {ident} {{}}`"
                ),
            );
        }
    }
    ok &= generics(item, errors);
    ok &= derives(&item.attrs, errors);
    ok &= serde_options(&item.attrs, errors);
    ok.then(|| item.clone())
}

/// A module's library exports one concrete type that owns its state.
fn generics(item: &ItemStruct, errors: &mut Errors) -> bool {
    let params = &item.generics.params;
    if params.is_empty() {
        return true;
    }
    if params
        .iter()
        .all(|p| matches!(p, GenericParam::Lifetime(_)))
    {
        errors.push_spanned(
            &item.generics,
            "a module cannot borrow: its state lives across frames and reloads; remove the \
             lifetime and own the data (`String`, not `&str`)",
        );
    } else {
        errors.push_spanned(
            &item.generics,
            "a module cannot be generic: its library exports one concrete type; remove the \
             parameters and name concrete types in the fields",
        );
    }
    false
}

/// The attribute derives serde's traits itself.
fn derives(attrs: &[Attribute], errors: &mut Errors) -> bool {
    derives_of(attrs, "#[grove::module]", errors)
}

/// `attribute` (`#[grove::module]`, `#[grove::state]`) derives serde's traits itself.
pub(crate) fn derives_of(attrs: &[Attribute], attribute: &str, errors: &mut Errors) -> bool {
    let mut ok = true;
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        // A derive list that does not parse is rustc's to report.
        let _ = attr.parse_nested_meta(|meta| {
            let last = meta.path.segments.last().map(|s| s.ident.to_string());
            if let Some(name @ ("Serialize" | "Deserialize")) = last.as_deref() {
                ok = false;
                errors.push_spanned(
                    &meta.path,
                    format!("{attribute} derives {name} itself: remove this derive"),
                );
            }
            Ok(())
        });
    }
    ok
}

/// serde options on the struct that the attribute sets itself.
fn serde_options(attrs: &[Attribute], errors: &mut Errors) -> bool {
    let mut ok = true;
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        // Anything else in `#[serde(...)]` is serde's to check.
        let _ = attr.parse_nested_meta(|meta| {
            for (option, why) in [
                (
                    "default",
                    "so that added fields start from the module's `Default`",
                ),
                ("crate", "to reach serde through grove"),
                ("bound", "from the fields' types"),
            ] {
                if meta.path.is_ident(option) {
                    ok = false;
                    errors.push_spanned(
                        &meta.path,
                        format!(
                            "#[grove::module] sets serde's `{option}` itself, {why}: \
                             remove this option"
                        ),
                    );
                }
            }
            parse::skip_value(&meta)
        });
    }
    ok
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
            "a module name is made of ASCII letters, digits, `_` and `-`, \
             e.g. `name = \"player_controller\"`",
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
        check(quote!(
            pub struct A {
                x: u32,
            }
        ))
        .unwrap();
        check(quote!(
            pub struct A {}
        ))
        .unwrap();
        check(quote!(
            #[serde(rename_all = "camelCase")]
            pub struct A {
                x: u32,
            }
        ))
        .unwrap();
    }

    #[test]
    fn reports_every_problem() {
        let err = check(quote!(
            #[derive(Default, serde::Serialize)]
            struct A<T>(T);
        ))
        .unwrap_err();
        assert!(err.contains("named fields"), "{err}");
        assert!(err.contains("cannot be generic"), "{err}");
        assert!(err.contains("remove this derive"), "{err}");
    }

    #[test]
    fn lifetimes_are_borrows() {
        let err = check(quote!(
            struct A<'a> {
                x: &'a str,
            }
        ))
        .unwrap_err();
        assert!(err.contains("cannot borrow"), "{err}");
    }

    #[test]
    fn serde_options_the_attribute_sets_are_refused() {
        let err = check(quote!(
            #[serde(default, deny_unknown_fields)]
            struct A {
                x: u32,
            }
        ))
        .unwrap_err();
        assert!(err.contains("sets serde's `default` itself"), "{err}");
        assert!(!err.contains("deny_unknown_fields"), "{err}");
    }

    #[test]
    fn names_are_checked() {
        let mut errors = Errors::default();
        name(&syn::parse_quote!("has space"), &mut errors);
        assert!(errors.finish().is_err());
    }
}
