//! What the attribute emits when it reports an error: the author's item, so that the IDE and
//! the rest of the crate keep working, without what only the attribute made valid.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Attribute, Fields, Item};

use crate::errors::Errors;

/// An attribute's whole output: `expand` of the item when `check` takes it and nothing
/// went wrong; on any error, the user's item plus `compile_error!`s, so that the IDE keeps
/// working and no secondary errors pile up.
pub(crate) fn or_errors<T>(
    input: TokenStream,
    mut errors: Errors,
    check: impl FnOnce(Item, &mut Errors) -> Option<T>,
    expand: impl FnOnce(T) -> TokenStream,
) -> TokenStream {
    let item = match syn::parse2::<Item>(input.clone()) {
        Ok(item) => check(item, &mut errors),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    match (errors.finish(), item) {
        (Ok(()), Some(item)) => expand(item),
        (Err(compile_errors), _) => {
            let item = self::item(input);
            quote!(#item #compile_errors)
        }
        (Ok(()), None) => unreachable!("an item is refused only with an error"),
    }
}

/// `input` as the author wrote it, minus its `#[serde(...)]` attributes when nothing else
/// derives serde for it: without the attribute's derive they are unknown attributes, which
/// rustc would report as well.
pub(crate) fn item(input: TokenStream) -> TokenStream {
    let Ok(mut item) = syn::parse2::<Item>(input.clone()) else {
        return input;
    };
    let (attrs, nested): (_, Vec<&mut Vec<Attribute>>) = match &mut item {
        Item::Struct(s) => (&mut s.attrs, fields_attrs(&mut s.fields).collect()),
        Item::Enum(e) => (
            &mut e.attrs,
            e.variants
                .iter_mut()
                .flat_map(|v| std::iter::once(&mut v.attrs).chain(fields_attrs(&mut v.fields)))
                .collect(),
        ),
        Item::Union(u) => (
            &mut u.attrs,
            u.fields.named.iter_mut().map(|f| &mut f.attrs).collect(),
        ),
        _ => return input,
    };
    if derives_serde(attrs) {
        return input;
    }
    for attrs in std::iter::once(attrs).chain(nested) {
        attrs.retain(|attr| !attr.path().is_ident("serde"));
    }
    item.into_token_stream()
}

fn fields_attrs(fields: &mut Fields) -> impl Iterator<Item = &mut Vec<Attribute>> {
    fields.iter_mut().map(|f| &mut f.attrs)
}

/// Whether the item has a `#[derive]` naming `Serialize` or `Deserialize`.
fn derives_serde(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("derive"))
        .any(|attr| {
            let mut found = false;
            let _ = attr.parse_nested_meta(|meta| {
                let last = meta.path.segments.last().map(|s| s.ident.to_string());
                found |= matches!(last.as_deref(), Some("Serialize" | "Deserialize"));
                Ok(())
            });
            found
        })
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    #[test]
    fn serde_attributes_go_without_a_serde_derive() {
        let out = item(quote!(
            #[derive(Default)]
            #[serde(rename_all = "camelCase")]
            struct A(#[serde(skip)] u32);
        ))
        .to_string();
        assert!(!out.contains("serde"), "{out}");
        assert!(out.contains("derive (Default)"), "{out}");
    }

    #[test]
    fn serde_attributes_stay_with_a_serde_derive() {
        let out = item(quote!(
            #[derive(serde::Serialize)]
            enum E {
                #[serde(rename = "a")]
                A,
            }
        ))
        .to_string();
        assert!(out.contains("rename"), "{out}");
    }
}
