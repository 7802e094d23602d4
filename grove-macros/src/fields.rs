//! The fields serde saves and restores with their own types' `Serialize` and `Deserialize`:
//! grove checks each of them once, at its type, and states the same requirement as a bound
//! on the derived serde impls, so that a type serde cannot save is one error, not several.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Attribute, ItemStruct, Type};

use crate::parse;

/// A field that needs its type's own `Serialize` and `Deserialize`.
pub(crate) struct StateField<'a> {
    /// Its position among the struct's fields.
    pub(crate) index: usize,
    pub(crate) ty: &'a Type,
    /// The field's `#[cfg]`s, for everything generated for it.
    pub(crate) cfgs: Vec<&'a Attribute>,
    /// Where errors about its type point: its last name, usually the one that lacks serde
    /// (`Position` in `Vec<Position>`), since a span cannot cover several tokens on stable.
    pub(crate) span: Span,
}

impl StateField<'_> {
    /// The check that the field's type can be saved: a method picked by the type, in the
    /// closure of checks the macros generate, spanned at the field.
    pub(crate) fn check(&self) -> TokenStream {
        let (ty, cfgs) = (self.ty, &self.cfgs);
        quote::quote_spanned! {self.span=>
            #(#cfgs)*
            (&__GroveStateField::<#ty>::NEW).__grove_check_field();
        }
    }

    /// The same requirement as a bound on the derived serde impls, for the grove crate
    /// named `krate` (its path as written, e.g. `::grove`).
    pub(crate) fn serde_bound(&self, krate: &str) -> Attribute {
        let ty = self.ty.to_token_stream().to_string();
        let ser = format!("for<'__grove> {ty}: {krate}::__private::serde::Serialize");
        let de = format!("{ty}: {krate}::__private::serde::Deserialize<'de>");
        let (ser, de) = (
            syn::LitStr::new(&ser, self.span),
            syn::LitStr::new(&de, self.span),
        );
        syn::parse_quote!(#[serde(bound(serialize = #ser, deserialize = #de))])
    }
}

/// serde field options after which the field's type needs less than its own `Serialize` and
/// `Deserialize`, or with which the author sets the bounds. Fields with these are left to
/// serde, which reports their problems itself.
const LEFT_TO_SERDE: &[&str] = &[
    "skip",
    "skip_serializing",
    "skip_deserializing",
    "with",
    "serialize_with",
    "deserialize_with",
    "bound",
    "borrow",
    "getter",
];

/// The fields of `item` that need their type's own `Serialize` and `Deserialize`.
///
/// A field whose type names the struct itself is left to serde too: a bound on it would
/// make the struct's `Serialize` depend on itself, which rustc cannot prove.
pub(crate) fn state_fields(item: &ItemStruct) -> Vec<StateField<'_>> {
    state_fields_in(item.fields.iter(), &item.ident)
}

/// As [`state_fields`], among `fields` (those of a struct, or of every variant of an
/// enum, in order: `index` counts them all) of the type named `ident`.
pub(crate) fn state_fields_in<'a>(
    fields: impl Iterator<Item = &'a syn::Field>,
    ident: &syn::Ident,
) -> Vec<StateField<'a>> {
    fields
        .enumerate()
        .filter(|(_, field)| !field.attrs.iter().any(left_to_serde))
        .filter(|(_, field)| !names(field.ty.to_token_stream(), ident))
        .map(|(index, field)| StateField {
            index,
            ty: &field.ty,
            cfgs: field
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("cfg"))
                .collect(),
            span: type_span(&field.ty),
        })
        .collect()
}

/// Where errors about a field's type point: its last name.
pub(crate) fn type_span(ty: &Type) -> Span {
    last_ident(ty.to_token_stream()).unwrap_or_else(|| ty.span())
}

/// Whether `attr` changes how serde handles its field (or might: a `cfg_attr` can hide a
/// `serde(skip)`, and an unreadable `serde(...)` is serde's to report).
fn left_to_serde(attr: &Attribute) -> bool {
    if attr.path().is_ident("cfg_attr") {
        return true;
    }
    if !attr.path().is_ident("serde") {
        return false;
    }
    let mut custom = false;
    let read = attr.parse_nested_meta(|meta| {
        custom |= LEFT_TO_SERDE
            .iter()
            .any(|option| meta.path.is_ident(option));
        parse::skip_value(&meta)
    });
    custom || read.is_err()
}

/// The span of the last identifier in `tokens`.
fn last_ident(tokens: TokenStream) -> Option<Span> {
    tokens.into_iter().fold(None, |last, token| match token {
        TokenTree::Ident(ident) => Some(ident.span()),
        TokenTree::Group(group) => last_ident(group.stream()).or(last),
        _ => last,
    })
}

/// Whether `tokens` name `Self` or `ident`.
fn names(tokens: TokenStream, ident: &syn::Ident) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(i) => i == "Self" || i == *ident,
        TokenTree::Group(group) => names(group.stream(), ident),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn state_names(item: TokenStream) -> Vec<String> {
        let item: ItemStruct = syn::parse2(item).unwrap();
        let names: Vec<_> = item
            .fields
            .iter()
            .map(|f| f.ident.clone().unwrap())
            .collect();
        state_fields(&item)
            .iter()
            .map(|f| names[f.index].to_string())
            .collect()
    }

    #[test]
    fn fields_with_custom_serde_are_left_to_serde() {
        let fields = state_names(quote!(
            struct A {
                plain: u32,
                #[serde(rename = "r", default)]
                renamed: u32,
                #[serde(skip)]
                skipped: u32,
                #[serde(rename = "x", with = "m")]
                with: u32,
                #[cfg_attr(feature = "x", serde(skip))]
                maybe: u32,
                #[serde(skip_serializing_if = "Option::is_none")]
                optional: Option<u32>,
            }
        ));
        assert_eq!(fields, ["plain", "renamed", "optional"]);
    }

    #[test]
    fn fields_of_the_struct_itself_are_left_to_serde() {
        let fields = state_names(quote!(
            struct Node {
                next: Option<Box<Self>>,
                children: Vec<Node>,
                #[cfg(feature = "x")]
                value: u32,
            }
        ));
        assert_eq!(fields, ["value"]);
    }
}
