//! The config file a module crate names in its own manifest:
//!
//! ```toml
//! [package.metadata.grove]
//! config = "config.toml"   # relative to the crate's directory
//! ```
//!
//! [`Engine::watch_crate`](crate::Engine::watch_crate) applies it before the module's first
//! `init` and watches it, as [`Engine::config_file`](crate::Engine::config_file) would, so
//! every host of the crate (a hand-written one, `cargo grove run`) gives the module the
//! same config without naming the file itself.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The config file named by `crate_dir/Cargo.toml`'s `[package.metadata.grove] config`,
/// if any, resolved against `crate_dir`.
pub(crate) fn declared_config(crate_dir: &Path) -> Result<Option<PathBuf>> {
    let manifest = crate_dir.join("Cargo.toml");
    let unusable = |reason: String| Error::Manifest {
        path: manifest.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&manifest).map_err(|e| unusable(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| unusable(e.message().to_owned()))?;
    let grove = table
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("grove"));
    let Some(grove) = grove else {
        return Ok(None);
    };
    let Some(grove) = grove.as_table() else {
        return Err(unusable(
            "`package.metadata.grove` is not a table; write `[package.metadata.grove]`".into(),
        ));
    };
    for key in grove.keys() {
        if key != "config" {
            return Err(unusable(format!(
                "`package.metadata.grove.{key}` is not a grove setting; the one setting is \
                 `config`, the module's config file"
            )));
        }
    }
    match grove.get("config") {
        None => Ok(None),
        Some(toml::Value::String(file)) if !file.is_empty() => Ok(Some(crate_dir.join(file))),
        Some(other) => Err(unusable(format!(
            "`package.metadata.grove.config` is {other}; give the config file's path, \
             relative to the crate, as a string: config = \"config.toml\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_with(metadata: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            format!("[package]\nname = \"m\"\nversion = \"0.1.0\"\n{metadata}"),
        )
        .unwrap();
        dir
    }

    #[test]
    fn a_declared_config_resolves_against_the_crate() {
        let dir = crate_with("[package.metadata.grove]\nconfig = \"conf/m.toml\"\n");
        assert_eq!(
            declared_config(dir.path()).unwrap(),
            Some(dir.path().join("conf/m.toml"))
        );
    }

    #[test]
    fn no_metadata_declares_nothing() {
        let dir = crate_with("[package.metadata.other]\nx = 1\n");
        assert_eq!(declared_config(dir.path()).unwrap(), None);
    }

    #[test]
    fn a_misspelt_or_mistyped_setting_is_an_error_naming_it() {
        let dir = crate_with("[package.metadata.grove]\nconfg = \"m.toml\"\n");
        let error = declared_config(dir.path()).unwrap_err().to_string();
        assert!(error.contains("package.metadata.grove.confg"), "{error}");
        let dir = crate_with("[package.metadata.grove]\nconfig = 3\n");
        let error = declared_config(dir.path()).unwrap_err().to_string();
        assert!(error.contains("as a string"), "{error}");
    }
}
