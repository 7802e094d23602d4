//! The settings grove adds to a development build of a watched crate ([`DevProfile`]), and
//! where a crate's own settings say otherwise.
//!
//! **Debug info: line tables only.** A debug build's library is mostly debug info: 15.3 MB
//! for the hello module with cargo's default (`debug = true`), 8.8 MB with line tables
//! only, and the edit loop pays for every byte twice (rustc and the linker write it, the
//! reload copies and maps it). Line tables are what a backtrace needs (function names and
//! `file:line`, inlined frames included); what goes is the description of types and
//! variables that a debugger shows.
//!
//! **grove-sdk at opt-level 1.** A module's state code is generic, compiled in the module
//! crate: unoptimised in debug. grove-sdk prebuilds the state codec's passes for common
//! field types, and a crate built at opt-level 0 reuses a dependency's instances when that
//! dependency is built at 0 or 1 (rustc's shared generics). At 1, a debug module saves and
//! restores a 16 MiB state in 77 ms instead of 212 ms (BENCHMARKS.md, big states). grove-sdk
//! is compiled once, not on each edit.
//!
//! The crate's own choice wins, setting by setting: when its workspace's `Cargo.toml`, a
//! cargo config file that applies to it or the environment sets it, grove adds nothing for
//! it.

use std::path::{Path, PathBuf};

/// How grove sets up a development (not `--release`) build of a watched crate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevProfile {
    /// grove's settings for a short edit loop, each unless the crate's own settings set it:
    /// - debug info reduced to line tables (`--config profile.dev.debug="line-tables-only"`):
    ///   backtraces keep their functions and `file:line`, the library is about half the
    ///   size, and rustc and the reload are both faster;
    /// - grove-sdk at opt-level 1 (`--config profile.dev.package.grove-sdk.opt-level=1`):
    ///   a debug module's state is saved and restored about 2.7x faster.
    ///
    /// The dependencies are built with these settings, so a target directory shared with a
    /// host built with cargo's defaults holds them twice (built once each). Set them in the
    /// workspace's `Cargo.toml` to share them (the template of `cargo grove new` does):
    ///
    /// ```toml
    /// [profile.dev]
    /// debug = "line-tables-only"
    ///
    /// [profile.dev.package.grove-sdk]
    /// opt-level = 1
    /// ```
    #[default]
    EditLoop,
    /// Nothing added: the crate's profiles and cargo's config as they are (cargo's default
    /// is full debug info, what a debugger needs to show variables, and every crate at
    /// opt-level 0).
    AsConfigured,
}

/// A setting grove adds to the dev profile: its key under `[profile.dev]`, and its value
/// as `--config` takes it.
struct Setting {
    /// The package it applies to (`None`: the whole profile).
    package: Option<&'static str>,
    key: &'static str,
    value: &'static str,
    /// The environment variable that sets it, if cargo reads one.
    env: Option<&'static str>,
}

const SETTINGS: [Setting; 2] = [
    Setting {
        package: None,
        key: "debug",
        value: "\"line-tables-only\"",
        env: Some("CARGO_PROFILE_DEV_DEBUG"),
    },
    Setting {
        package: Some("grove-sdk"),
        key: "opt-level",
        value: "1",
        env: None,
    },
];

/// The arguments to add to cargo for a build of package `package` in `dir`: each of
/// grove's settings that the crate does not set itself (where it does is logged).
pub(super) fn config_args(
    profile: DevProfile,
    release: bool,
    package: &str,
    dir: &Path,
) -> Vec<String> {
    if release || profile == DevProfile::AsConfigured {
        return Vec::new();
    }
    let mut args = Vec::new();
    for setting in &SETTINGS {
        if let Some(source) = set_by_crate(setting, package, dir) {
            tracing::debug!(
                krate = %package,
                setting = setting.key,
                set_in = %source,
                "the crate sets this in its dev profile: built as it says"
            );
            continue;
        }
        let path = match setting.package {
            Some(target) => format!("profile.dev.package.{target}.{}", setting.key),
            None => format!("profile.dev.{}", setting.key),
        };
        args.push("--config".to_owned());
        args.push(format!("{path}={}", setting.value));
    }
    args
}

/// Where `setting` is set for `package` in `dir`, if anywhere: the environment, the
/// workspace's manifest or a cargo config file.
fn set_by_crate(setting: &Setting, package: &str, dir: &Path) -> Option<String> {
    if let Some(var) = setting.env.filter(|var| std::env::var_os(var).is_some()) {
        return Some(var.to_owned());
    }
    let sets = |file: &Path| -> bool {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
            .is_some_and(|table| sets(&table, setting, package))
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

/// Whether `table` (a manifest or a cargo config) sets `setting` in the dev profile where
/// it would apply to the build of `package`: a profile-wide setting for every package, for
/// all dependencies (`"*"`) or for `package`; a setting of one package for that package or
/// all dependencies.
fn sets(table: &toml::Table, setting: &Setting, package: &str) -> bool {
    let Some(dev) = table
        .get("profile")
        .and_then(|p| p.get("dev"))
        .and_then(toml::Value::as_table)
    else {
        return false;
    };
    let packages = dev.get("package").and_then(toml::Value::as_table);
    let set_for = |name: &str| {
        packages
            .and_then(|p| p.get(name))
            .and_then(|p| p.get(setting.key))
            .is_some()
    };
    match setting.package {
        None => dev.contains_key(setting.key) || set_for(package) || set_for("*"),
        Some(target) => set_for(target) || set_for("*"),
    }
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
    fn a_crates_own_settings_are_seen() {
        let [debug, sdk] = &SETTINGS;
        for text in [
            "[profile.dev]\ndebug = true\n",
            "[profile.dev]\ndebug = \"full\"\nopt-level = 1\n",
            "[profile.dev.package.hello-module]\ndebug = 0\n",
            "[profile.dev.package.\"*\"]\ndebug = \"limited\"\n",
        ] {
            assert!(sets(&table(text), debug, "hello-module"), "{text}");
        }
        for text in [
            "",
            "[profile.dev]\nopt-level = 1\n",
            "[profile.release]\ndebug = true\n",
            "[profile.dev.package.other]\ndebug = true\n",
            "[profile.dev.package.hello-module]\nopt-level = 3\n",
        ] {
            assert!(!sets(&table(text), debug, "hello-module"), "{text}");
        }
        for text in [
            "[profile.dev.package.grove-sdk]\nopt-level = 0\n",
            "[profile.dev.package.\"*\"]\nopt-level = 2\n",
        ] {
            assert!(sets(&table(text), sdk, "hello-module"), "{text}");
        }
        for text in [
            "[profile.dev]\nopt-level = 1\n",
            "[profile.dev.package.hello-module]\nopt-level = 3\n",
            "[profile.dev.package.grove-sdk]\ndebug = true\n",
        ] {
            assert!(!sets(&table(text), sdk, "hello-module"), "{text}");
        }
    }

    #[test]
    fn grove_adds_each_setting_the_crate_does_not_make() {
        let dir = tempfile::tempdir().unwrap();
        let krate = dir.path().join("module");
        std::fs::create_dir_all(&krate).unwrap();
        let manifest = "[package]\nname = \"m\"\nversion = \"0.1.0\"\n";
        std::fs::write(krate.join("Cargo.toml"), manifest).unwrap();
        let debug = ["--config", "profile.dev.debug=\"line-tables-only\""];
        let sdk = ["--config", "profile.dev.package.grove-sdk.opt-level=1"];
        assert_eq!(
            config_args(DevProfile::EditLoop, false, "m", &krate),
            [debug, sdk].concat()
        );
        assert!(
            config_args(DevProfile::EditLoop, true, "m", &krate).is_empty(),
            "release"
        );
        assert!(config_args(DevProfile::AsConfigured, false, "m", &krate).is_empty());

        // The workspace above the crate sets debug info.
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"module\"]\n\n[profile.dev]\ndebug = 1\n",
        )
        .unwrap();
        assert_eq!(config_args(DevProfile::EditLoop, false, "m", &krate), sdk);
        std::fs::remove_file(dir.path().join("Cargo.toml")).unwrap();

        // A cargo config file above the crate sets both.
        std::fs::create_dir_all(dir.path().join(".cargo")).unwrap();
        std::fs::write(
            dir.path().join(".cargo/config.toml"),
            "[profile.dev.package.m]\ndebug = true\n\n[profile.dev.package.grove-sdk]\nopt-level = 0\n",
        )
        .unwrap();
        assert!(config_args(DevProfile::EditLoop, false, "m", &krate).is_empty());
    }
}
