//! Parsing the attribute's options: `#[grove::module(name = "...", crate = "...")]`.

use proc_macro2::TokenStream;
use syn::LitStr;
use syn::parse::Parser;

use crate::errors::Errors;

/// The options given to the attribute.
#[derive(Default)]
pub(crate) struct Options {
    /// `name = "..."`: the module's name; default, the type's name in snake case.
    pub(crate) name: Option<LitStr>,
    /// `crate = "..."`: the path to grove-sdk; default `::grove`.
    pub(crate) krate: Option<syn::Path>,
}

const EXPECTED: &str = "expected one of: name, crate";

/// Parses the options, pushing every problem found into `errors`.
pub(crate) fn options(attr: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            let value: LitStr = meta.value()?.parse()?;
            if options.name.is_some() {
                errors.push_spanned(&meta.path, "duplicate option `name`");
            }
            options.name = Some(value);
            Ok(())
        } else if meta.path.is_ident("crate") {
            let value: LitStr = meta.value()?.parse()?;
            if options.krate.is_some() {
                errors.push_spanned(&meta.path, "duplicate option `crate`");
            }
            match value.parse::<syn::Path>() {
                Ok(path) => options.krate = Some(path),
                Err(_) => errors.push_spanned(
                    &value,
                    "`crate` takes the path to grove-sdk as a string, e.g. `crate = \"::grove\"`",
                ),
            }
            Ok(())
        } else {
            let option = meta
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_else(|| {
                    let path = &meta.path;
                    quote::quote!(#path).to_string()
                });
            Err(meta.error(format!("unknown option `{option}`; {EXPECTED}")))
        }
    });
    if let Err(error) = parser.parse2(attr) {
        errors.push(error);
    }
    options
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    #[test]
    fn reads_both_options() {
        let mut errors = Errors::default();
        let o = options(quote!(name = "counter", crate = "::my::grove"), &mut errors);
        assert!(errors.finish().is_ok());
        assert_eq!(o.name.unwrap().value(), "counter");
        let krate = o.krate.unwrap();
        assert_eq!(quote!(#krate).to_string().replace(' ', ""), "::my::grove");
    }

    #[test]
    fn unknown_option_lists_the_known_ones() {
        let mut errors = Errors::default();
        options(quote!(nmae = "x"), &mut errors);
        let err = errors.finish().unwrap_err().to_string();
        assert!(err.contains("unknown option `nmae`; expected one of: name, crate"), "{err}");
    }
}
