//! Parsing the attribute's options:
//! `#[grove::module(name = "...", config = Type, version = N, crate = "...")]`.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprLit, Lit, LitStr, Token};

use crate::errors::Errors;

/// The options given to the attribute.
#[derive(Default)]
pub(crate) struct Options {
    /// `name = "..."`: the module's name; default, the type's name in snake case.
    pub(crate) name: Option<LitStr>,
    /// `crate = "..."`: the path to grove-sdk; default `::grove`.
    pub(crate) krate: Option<syn::Path>,
    /// `config = Type`: the module's config type, taken through `grove::Configure`.
    pub(crate) config: Option<syn::Type>,
    /// `version = N`: the version of the module's state, at least 1; default 1.
    pub(crate) version: Option<syn::LitInt>,
}

const EXPECTED: &str = "expected one of: name, config, version, crate";

/// Parses the options, pushing every problem found into `errors`. A bad option does not
/// stop the others from being read, so that all problems are reported at once.
pub(crate) fn options(attr: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            let example = "`name = \"player_controller\"`";
            if let Some(value) = string_value(&meta, "name", example, errors)? {
                if options.name.is_some() {
                    errors.push_spanned(&meta.path, "`name` is given twice: keep one");
                }
                options.name = Some(value);
            }
        } else if meta.path.is_ident("crate") {
            let example = "`crate = \"::grove\"`";
            if let Some(value) = string_value(&meta, "crate", example, errors)? {
                if options.krate.is_some() {
                    errors.push_spanned(&meta.path, "`crate` is given twice: keep one");
                }
                match value.parse::<syn::Path>() {
                    Ok(path) => options.krate = Some(path),
                    Err(_) => errors.push_spanned(
                        &value,
                        format!("`crate` takes the path to grove-sdk, e.g. {example}"),
                    ),
                }
            }
        } else if meta.path.is_ident("version") {
            let example = "`version = 2`";
            if !meta.input.peek(Token![=]) {
                errors.push_spanned(&meta.path, format!("`version` takes a number: {example}"));
                skip_value(&meta)?;
                return Ok(());
            }
            match meta.value()?.parse::<Expr>()? {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(value),
                    ..
                }) => {
                    if options.version.is_some() {
                        errors.push_spanned(&meta.path, "`version` is given twice: keep one");
                    }
                    match value.base10_parse::<u32>() {
                        Ok(n) if n >= 1 && value.suffix().is_empty() => {
                            options.version = Some(value)
                        }
                        _ => errors.push_spanned(
                            &value,
                            format!(
                                "`version` is a number from 1 to {}, without a suffix: {example}",
                                u32::MAX
                            ),
                        ),
                    }
                }
                other => errors.push_spanned(other, format!("`version` takes a number: {example}")),
            }
        } else if meta.path.is_ident("config") {
            let example = "`config = ParticleConfig`";
            if !meta.input.peek(Token![=]) {
                errors.push_spanned(&meta.path, format!("`config` takes a type: {example}"));
                skip_value(&meta)?;
                return Ok(());
            }
            let ty = meta.value()?.parse::<syn::Type>()?;
            if options.config.is_some() {
                errors.push_spanned(&meta.path, "`config` is given twice: keep one");
            }
            options.config = Some(ty);
        } else {
            let path = &meta.path;
            let option = quote::quote!(#path).to_string().replace(' ', "");
            errors.push_spanned(path, format!("unknown option `{option}`; {EXPECTED}"));
            skip_value(&meta)?;
        }
        Ok(())
    });
    if let Err(error) = parser.parse2(attr) {
        errors.push(error);
    }
    options
}

/// The string after `option =`; `None`, with the error pushed, when it is something else.
/// `Err` only when what follows cannot be skipped to reach the next option.
fn string_value(
    meta: &ParseNestedMeta<'_>,
    option: &str,
    example: &str,
    errors: &mut Errors,
) -> syn::Result<Option<LitStr>> {
    if !meta.input.peek(Token![=]) {
        errors.push_spanned(&meta.path, format!("`{option}` takes a value: {example}"));
        skip_value(meta)?;
        return Ok(None);
    }
    match meta.value()?.parse::<Expr>()? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(value),
            ..
        }) => Ok(Some(value)),
        other => {
            errors.push_spanned(other, format!("`{option}` takes a string: {example}"));
            Ok(None)
        }
    }
}

/// Steps over whatever an option we do not use carries: `= value` or `(...)`.
pub(crate) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::Group>()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn errors_of(attr: TokenStream) -> String {
        let mut errors = Errors::default();
        options(attr, &mut errors);
        errors.finish().unwrap_err().to_string()
    }

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
        let err = errors_of(quote!(nmae = "x"));
        assert!(
            err.contains("unknown option `nmae`; expected one of: name, config, version, crate"),
            "{err}"
        );
    }

    #[test]
    fn reports_every_bad_option() {
        let err = errors_of(quote!(
            nmae = "x",
            crate = ::grove,
            flag,
            name,
            size(3),
            name = 1
        ));
        assert!(err.contains("unknown option `nmae`"), "{err}");
        assert!(err.contains("`crate` takes a string"), "{err}");
        assert!(err.contains("unknown option `flag`"), "{err}");
        assert!(err.contains("`name` takes a value"), "{err}");
        assert!(err.contains("unknown option `size`"), "{err}");
        assert!(err.contains("`name` takes a string"), "{err}");
    }

    #[test]
    fn reads_a_config_type() {
        let mut errors = Errors::default();
        let o = options(quote!(config = crate::cfg::Particles<u8>), &mut errors);
        assert!(errors.finish().is_ok());
        let ty = o.config.unwrap();
        assert_eq!(
            quote!(#ty).to_string().replace(' ', ""),
            "crate::cfg::Particles<u8>"
        );
        assert!(errors_of(quote!(config)).contains("`config` takes a type"));
    }

    #[test]
    fn reads_a_version() {
        let mut errors = Errors::default();
        let o = options(quote!(version = 3), &mut errors);
        assert!(errors.finish().is_ok());
        assert_eq!(o.version.unwrap().base10_parse::<u32>().unwrap(), 3);
        for bad in [
            quote!(version = 0),
            quote!(version = 5u8),
            quote!(version = 4294967296),
        ] {
            let err = errors_of(bad);
            assert!(err.contains("`version` is a number from 1 to"), "{err}");
        }
        assert!(errors_of(quote!(version = "2")).contains("`version` takes a number"));
        assert!(errors_of(quote!(version)).contains("`version` takes a number"));
    }

    #[test]
    fn duplicates_are_reported() {
        let err = errors_of(quote!(name = "a", name = "b"));
        assert!(err.contains("`name` is given twice"), "{err}");
    }
}
