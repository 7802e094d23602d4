//! The `#[grove::state]` attribute: serde through grove for a type nested in a module's
//! state, with defaults, so that a field it gains in a new version takes its default.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::{Attribute, Field, Item, LitStr, parse_quote};

use crate::errors::Errors;
use crate::{fallback, fields, parse, validate};

/// The options of `#[grove::state(...)]`.
#[derive(Default)]
struct Options {
    /// `crate = "..."`: the path to grove-sdk; default `::grove`.
    krate: Option<syn::Path>,
    /// `no_default`: the type has no `Default`; a saved state missing one of its fields
    /// refuses the reload.
    no_default: bool,
}

const EXPECTED: &str = "expected one of: no_default, crate";

fn options(attr: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("no_default") {
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                errors.push_spanned(&meta.path, "`no_default` takes no value");
                parse::skip_value(&meta)?;
            }
            options.no_default = true;
        } else if meta.path.is_ident("crate") {
            let example = "`crate = \"::grove\"`";
            let value = meta.value().and_then(|v| v.parse::<LitStr>());
            match value.as_ref().map(|v| v.parse::<syn::Path>()) {
                Ok(Ok(path)) => options.krate = Some(path),
                _ => errors.push_spanned(
                    &meta.path,
                    format!("`crate` takes the path to grove-sdk as a string, e.g. {example}"),
                ),
            }
        } else {
            let path = &meta.path;
            let option = quote!(#path).to_string().replace(' ', "");
            errors.push_spanned(path, format!("unknown option `{option}`; {EXPECTED}"));
            parse::skip_value(&meta)?;
        }
        Ok(())
    });
    if let Err(error) = parser.parse2(attr) {
        errors.push(error);
    }
    options
}

/// The whole attribute: on any error, the user's item plus `compile_error!`s.
pub(crate) fn state(attr: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = options(attr, &mut errors);
    fallback::or_errors(input, errors, check, |item| expand(&options, item))
}

/// A struct or an enum, without serde derives or the container options grove sets.
fn check(item: Item, errors: &mut Errors) -> Option<Item> {
    let attrs = match &item {
        Item::Struct(s) => &s.attrs,
        Item::Enum(e) => &e.attrs,
        Item::Union(u) => {
            errors.push_spanned(
                u.union_token,
                "#[grove::state] goes on a struct or an enum, not on a union: serde cannot save a union",
            );
            return None;
        }
        other => {
            errors.push_spanned(other, "#[grove::state] goes on a struct or an enum");
            return None;
        }
    };
    let mut ok = validate::derives_of(attrs, "#[grove::state]", errors);
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            for (option, why) in [
                (
                    "default",
                    "so that added fields take the type's `Default` (opt out with `#[grove::state(no_default)]`)",
                ),
                ("crate", "to reach serde through grove"),
            ] {
                if meta.path.is_ident(option) {
                    ok = false;
                    errors.push_spanned(
                        &meta.path,
                        format!(
                            "#[grove::state] sets serde's `{option}` itself, {why}: remove this option"
                        ),
                    );
                }
            }
            parse::skip_value(&meta)
        });
    }
    ok.then_some(item)
}

/// Whether a field's serde options already say how it defaults (or that it is skipped,
/// which defaults it).
fn has_default(field: &Field) -> bool {
    field
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("serde"))
        .any(|attr| {
            let mut found = false;
            let _ = attr.parse_nested_meta(|meta| {
                found |= meta.path.is_ident("default");
                parse::skip_value(&meta)
            });
            found
        })
}

fn expand(options: &Options, mut item: Item) -> TokenStream {
    let krate = options
        .krate
        .clone()
        .unwrap_or_else(|| parse_quote!(::grove));
    let krate_str = quote!(#krate).to_string().replace(' ', "");
    let serde_path = format!("{krate_str}::__private::serde");
    let is_struct = matches!(item, Item::Struct(_));
    let (ident, generics, attrs) = match &mut item {
        Item::Struct(s) => (s.ident.clone(), s.generics.clone(), &mut s.attrs),
        Item::Enum(e) => (e.ident.clone(), e.generics.clone(), &mut e.attrs),
        _ => unreachable!("checked: a struct or an enum"),
    };
    // A generic type's serde impls carry bounds serde infers from its parameters; grove
    // leaves them to serde (its plain `default` adds `Self: Default`), and checks fields
    // only in concrete types, where a check cannot depend on a parameter.
    let generic = !generics.params.is_empty();

    let container: Attribute = if is_struct && !options.no_default {
        if generic {
            parse_quote!(#[serde(crate = #serde_path, default)])
        } else {
            // Spanned at the type's name: a missing `Default` is reported there, once,
            // with what to do.
            let path = LitStr::new(
                &format!("{krate_str}::__private::state_default"),
                ident.span(),
            );
            parse_quote!(#[serde(crate = #serde_path, default = #path)])
        }
    } else {
        parse_quote!(#[serde(crate = #serde_path)])
    };
    let derive: Attribute = parse_quote!(
        #[derive(#krate::__private::serde::Serialize, #krate::__private::serde::Deserialize)]
    );
    attrs.insert(0, container);
    attrs.insert(0, derive);

    // The fields, in order: those of the struct, or of every variant.
    let mut all_fields: Vec<&mut Field> = match &mut item {
        Item::Struct(s) => s.fields.iter_mut().collect(),
        Item::Enum(e) => e
            .variants
            .iter_mut()
            .flat_map(|v| v.fields.iter_mut())
            .collect(),
        _ => unreachable!(),
    };
    let mut field_checks = Vec::new();
    // Enums: the named fields of struct variants default one by one (serde has no
    // container default for an enum).
    for field in all_fields.iter_mut() {
        let in_enum_variant = !is_struct && field.ident.is_some();
        if in_enum_variant && !options.no_default && !has_default(field) {
            let default: Attribute = if generic {
                parse_quote!(#[serde(default)])
            } else {
                let ty = &field.ty;
                let span = fields::type_span(ty);
                let path = LitStr::new(&format!("{krate_str}::__private::field_default"), span);
                parse_quote!(#[serde(default = #path)])
            };
            field.attrs.push(default);
        }
    }
    if !generic {
        let checked = fields::state_fields_in(all_fields.iter().map(|f| &**f), &ident);
        let mut bounds = Vec::new();
        for field in checked {
            field_checks.push(field.check());
            bounds.push((field.index, field.serde_bound(&krate_str)));
        }
        for (index, bound) in bounds {
            all_fields[index].attrs.push(bound);
        }
    }
    let field_checks = (!field_checks.is_empty()).then(|| {
        quote! {
            #[automatically_derived]
            const _: () = {
                let _ = || {
                    use #krate::__private::{Saved as _, StateField as __GroveStateField, Unsaved as _};
                    #(#field_checks)*
                };
            };
        }
    });
    quote! {
        #item
        #field_checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(attr: TokenStream, item: TokenStream) -> String {
        state(attr, item).to_string()
    }

    #[test]
    fn options_are_read_and_unknown_ones_listed() {
        let mut errors = Errors::default();
        let o = options(quote!(no_default, crate = "::my::grove"), &mut errors);
        assert!(errors.finish().is_ok());
        assert!(o.no_default);
        let out = errors_of(
            quote!(nodefault),
            quote!(
                struct A {
                    x: u32,
                }
            ),
        );
        assert!(
            out.contains("unknown option `nodefault`; expected one of: no_default, crate"),
            "{out}"
        );
    }

    #[test]
    fn unions_and_serde_derives_are_refused_and_the_item_kept() {
        let out = errors_of(quote!(), quote!(union U { a: u32 }));
        assert!(out.contains("not on a union"), "{out}");
        let out = errors_of(
            quote!(),
            quote!(
                #[derive(serde::Deserialize)]
                #[serde(default)]
                struct A {
                    x: u32,
                }
            ),
        );
        assert!(out.contains("derives Deserialize itself"), "{out}");
        assert!(out.contains("sets serde's `default` itself"), "{out}");
        assert!(out.contains("struct A"), "{out}");
    }

    #[test]
    fn struct_variants_fields_default_one_by_one() {
        let out = state(
            quote!(),
            quote!(
                enum Phase {
                    Lobby,
                    Playing {
                        level: u8,
                        #[serde(default = "nine")]
                        lives: u8,
                    },
                    Over(u32),
                }
            ),
        )
        .to_string();
        assert_eq!(out.matches("__private::field_default").count(), 1, "{out}");
    }
}
