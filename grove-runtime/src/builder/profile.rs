//! The settings grove adds to a development build of a watched crate ([`DevProfile`]), and
//! where a crate's own settings say otherwise.
//!
//! A debug build's library is mostly debug info: 15.3 MB for the hello module with cargo's
//! default (`debug = true`), 8.8 MB with line tables only, and the edit loop pays for every
//! byte twice (rustc and the linker write it, the reload copies and maps it). Line tables
//! are what a backtrace needs (function names and `file:line`, inlined frames included);
//! what goes is the description of types and variables that a debugger shows.
//!
//! The crate's own choice wins: when its workspace's `Cargo.toml`, a cargo config file that
//! applies to it or `CARGO_PROFILE_DEV_DEBUG` sets `debug` for the dev profile, grove adds
//! nothing.

use std::path::{Path, PathBuf};

/// How grove sets up a development (not `--release`) build of a watched crate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevProfile {
    /// Debug info reduced to line tables (`--config profile.dev.debug="line-tables-only"`):
    /// backtraces keep their functions and `file:line`, the library is about half the size,
    /// and the edit loop is shorter (rustc and the reload both). Unless the crate's own
    /// settings set `debug` for the dev profile: then those apply.
    ///
    /// The dependencies are built with the same setting, so a target directory shared with
    /// a host built with cargo's defaults holds them twice (built once each). Set
    /// `debug = "line-tables-only"` under `[profile.dev]` in the workspace's `Cargo.toml`
    /// to share them (the template of `cargo grove new` does).
    #[default]
    LineTables,
    /// Nothing added: the crate's profiles and cargo's config as they are (cargo's default
    /// is full debug info: what a debugger needs to show variables).
    AsConfigured,
}

/// The arguments to add to cargo for a build of package `package` in `dir`: the dev
/// profile's debug setting, unless the crate sets its own (then it is logged where).
pub(super) fn config_args(
    profile: DevProfile,
    release: bool,
    package: &str,
    dir: &Path,
) -> Vec<String> {
    if release || profile == DevProfile::AsConfigured {
        return Vec::new();
    }
    if let Some(source) = debug_set_by_crate(package, dir) {
        tracing::debug!(krate = %package, set_in = %source, "the crate sets the dev profile's debug info: built as it says");
        return Vec::new();
    }
    vec![
        "--config".to_owned(),
        "profile.dev.debug=\"line-tables-only\"".to_owned(),
    ]
}

/// Where the dev profile's `debug` is set for `package` in `dir`, if anywhere: the
/// environment, the workspace's manifest or a cargo config file.
fn debug_set_by_crate(package: &str, dir: &Path) -> Option<String> {
    if std::env::var_os("CARGO_PROFILE_DEV_DEBUG").is_some() {
        return Some("CARGO_PROFILE_DEV_DEBUG".to_owned());
    }
    let sets = |file: &Path| -> bool {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
            .is_some_and(|table| sets_debug(&table, package))
    };
    // Profiles are read from the workspace's root manifest only: the crate's own when it
    // is the root, else the nearest one above it with a [workspace] table.
    let own = dir.join("Cargo.toml");
    let root = dir
        .ancestors()
        .skip(1)
        .map(|d| d.join("Cargo.toml"))
        .find(|m| is_workspace_root(m));
    let manifest = match root {
        Some(root) if !is_workspace_root(&own) => root,
        _ => own,
    };
    let configs = dir
        .ancestors()
        .flat_map(|d| [d.join(".cargo/config.toml"), d.join(".cargo/config")])
        .chain(
            cargo_home()
                .into_iter()
                .flat_map(|home| [home.join("config.toml"), home.join("config")]),
        );
    std::iter::once(manifest)
        .chain(configs)
        .filter(|file| sets(file))
        .map(|file| file.display().to_string())
        .next()
}

/// Whether `table` (a manifest or a cargo config) sets the dev profile's `debug` for
/// `package`: for every package, for all dependencies, or for this one.
fn sets_debug(table: &toml::Table, package: &str) -> bool {
    let Some(dev) = table
        .get("profile")
        .and_then(|p| p.get("dev"))
        .and_then(toml::Value::as_table)
    else {
        return false;
    };
    if dev.contains_key("debug") {
        return true;
    }
    let packages = dev.get("package").and_then(toml::Value::as_table);
    [package, "*"].iter().any(|name| {
        packages
            .and_then(|p| p.get(*name))
            .and_then(|p| p.get("debug"))
            .is_some()
    })
}

fn is_workspace_root(manifest: &Path) -> bool {
    std::fs::read_to_string(manifest)
        .ok()
        .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
        .is_some_and(|table| table.contains_key("workspace"))
}

/// `$CARGO_HOME`, or `~/.cargo`.
fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_crates_own_debug_setting_is_seen() {
        for text in [
            "[profile.dev]\ndebug = true\n",
            "[profile.dev]\ndebug = \"full\"\nopt-level = 1\n",
            "[profile.dev.package.hello-module]\ndebug = 0\n",
            "[profile.dev.package.\"*\"]\ndebug = \"limited\"\n",
        ] {
            assert!(sets_debug(&table(text), "hello-module"), "{text}");
        }
        for text in [
            "",
            "[profile.dev]\nopt-level = 1\n",
            "[profile.release]\ndebug = true\n",
            "[profile.dev.package.other]\ndebug = true\n",
            "[profile.dev.package.hello-module]\nopt-level = 3\n",
        ] {
            assert!(!sets_debug(&table(text), "hello-module"), "{text}");
        }
    }

    #[test]
    fn line_tables_are_added_unless_the_crate_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let krate = dir.path().join("module");
        std::fs::create_dir_all(&krate).unwrap();
        let manifest = "[package]\nname = \"m\"\nversion = \"0.1.0\"\n";
        std::fs::write(krate.join("Cargo.toml"), manifest).unwrap();
        let added = config_args(DevProfile::LineTables, false, "m", &krate);
        assert_eq!(
            added,
            ["--config", "profile.dev.debug=\"line-tables-only\""]
        );
        assert!(
            config_args(DevProfile::LineTables, true, "m", &krate).is_empty(),
            "release"
        );
        assert!(config_args(DevProfile::AsConfigured, false, "m", &krate).is_empty());

        // The workspace above the crate sets it.
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"module\"]\n\n[profile.dev]\ndebug = 1\n",
        )
        .unwrap();
        assert!(config_args(DevProfile::LineTables, false, "m", &krate).is_empty());
        std::fs::remove_file(dir.path().join("Cargo.toml")).unwrap();

        // A cargo config file above the crate sets it for this package.
        std::fs::create_dir_all(dir.path().join(".cargo")).unwrap();
        std::fs::write(
            dir.path().join(".cargo/config.toml"),
            "[profile.dev.package.m]\ndebug = true\n",
        )
        .unwrap();
        assert!(config_args(DevProfile::LineTables, false, "m", &krate).is_empty());
    }
}
