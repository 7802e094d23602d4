//! `cargo grove new`: a project in one command. A workspace whose root package is the host
//! and whose `modules/` hold the module crates (one to start with), a config file the
//! module names in its manifest, and a state directory; `cargo run` in it works at once,
//! and so does `cargo grove run`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where the new project's grove crates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroveSource {
    /// Path dependencies on a grove checkout (its root: the directory holding `grove-sdk/`
    /// and `grove-runtime/`). Its `Cargo.lock` is copied too, so the project builds with
    /// the dependency versions the checkout is tested with.
    Checkout(PathBuf),
    /// Versions from crates.io.
    CratesIo(String),
}

impl GroveSource {
    /// The checkout this `cargo-grove` was built from, when it is still there (an install
    /// with `cargo install --path cargo-grove`); otherwise this version on crates.io.
    pub fn default_for_this_build() -> Self {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        match Self::checkout(&checkout) {
            Ok(source) => source,
            Err(_) => Self::CratesIo(env!("CARGO_PKG_VERSION").to_owned()),
        }
    }

    /// Path dependencies on the grove checkout at `root`, checked to be one.
    pub fn checkout(root: &Path) -> Result<Self> {
        let root = root.canonicalize().map_err(|e| Error::NotACheckout {
            path: root.to_owned(),
            reason: e.to_string(),
        })?;
        for member in ["grove-sdk", "grove-runtime"] {
            if !root.join(member).join("Cargo.toml").is_file() {
                return Err(Error::NotACheckout {
                    path: root,
                    reason: format!("it has no {member}/Cargo.toml"),
                });
            }
        }
        Ok(Self::Checkout(root))
    }

    fn dependency(&self, krate: &str) -> String {
        match self {
            Self::Checkout(root) => {
                format!(
                    "{{ path = {} }}",
                    toml_string(&root.join(krate).to_string_lossy())
                )
            }
            Self::CratesIo(version) => toml_string(version),
        }
    }
}

impl fmt::Display for GroveSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Checkout(root) => write!(f, "the grove checkout at {}", root.display()),
            Self::CratesIo(version) => write!(f, "grove {version} from crates.io"),
        }
    }
}

/// What `cargo grove new` made.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// The project's directory.
    pub dir: PathBuf,
    /// The project's (and the host package's) name.
    pub name: String,
    /// The module crate's directory.
    pub module_dir: PathBuf,
    /// The module's name, as the engine knows it.
    pub module_name: String,
}

/// Creates a project named after `dir`'s last component (or `name`) in `dir`, which must
/// not exist or be empty.
pub fn create(dir: &Path, name: Option<&str>, source: &GroveSource) -> Result<NewProject> {
    let name = match name {
        Some(name) => name.to_owned(),
        None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::BadName {
                name: dir.display().to_string(),
                reason: "the path has no last component to name the project after; give \
                         --name"
                    .into(),
            })?,
    };
    check_name(&name)?;
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(Error::Exists {
                path: dir.to_owned(),
            });
        }
    }
    let module_name = name.replace('-', "_");
    let type_name = camel_case(&name);
    let module_dir = dir.join("modules").join(&name);
    let files = [
        (dir.join("Cargo.toml"), host_manifest(&name, source)),
        (dir.join("src/main.rs"), host_main(&name)),
        (dir.join(".gitignore"), "/target\n/state\n".to_owned()),
        (dir.join("README.md"), readme(&name)),
        (
            module_dir.join("Cargo.toml"),
            module_manifest(&name, source),
        ),
        (module_dir.join("config.toml"), module_config(&name)),
        (
            module_dir.join("src/lib.rs"),
            module_source(&name, &type_name),
        ),
    ];
    for (path, text) in &files {
        write(path, text)?;
    }
    let state = dir.join("state");
    std::fs::create_dir_all(&state).map_err(|source| Error::Write {
        path: state.clone(),
        source,
    })?;
    if let GroveSource::Checkout(root) = source {
        let lock = root.join("Cargo.lock");
        if lock.is_file() {
            let to = dir.join("Cargo.lock");
            std::fs::copy(&lock, &to).map_err(|source| Error::Write { path: to, source })?;
        }
    }
    Ok(NewProject {
        dir: dir.to_owned(),
        name,
        module_dir,
        module_name,
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    let io = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

/// A package name cargo takes, that makes a Rust identifier for the module's type.
fn check_name(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::BadName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    let Some(first) = name.chars().next() else {
        return bad("it is empty");
    };
    if !first.is_ascii_alphabetic() {
        return bad("it must start with a letter");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return bad(&format!(
            "`{c}` is not allowed: use letters, digits, `-` and `_`"
        ));
    }
    const RESERVED: &[&str] = &[
        "alloc",
        "core",
        "std",
        "test",
        "proc_macro",
        "proc-macro",
        "self",
        "super",
        "crate",
        "build",
        "deps",
        "examples",
        "incremental",
        "grove",
        "grove-sdk",
        "grove-runtime",
        "grove-macros",
    ];
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern",
        "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type",
        "unsafe", "use", "where", "while", "yield", "abstract", "become", "box", "do", "final",
        "macro", "override", "priv", "typeof", "unsized", "virtual",
    ];
    if RESERVED.contains(&name) || KEYWORDS.contains(&name) {
        return bad("it is a Rust keyword or a name cargo or grove already uses; pick another");
    }
    Ok(())
}

fn camel_case(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// A TOML basic string holding `text`.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn host_manifest(name: &str, source: &GroveSource) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
grove-runtime = {runtime}

[workspace]
# Every module crate under modules/: `cargo grove run` finds and runs them all.
members = ["modules/*"]

[workspace.metadata.grove]
# Where module states are kept between runs (snapshots, crash recovery).
state-dir = "state"

# Debug info reduced to line tables: backtraces keep file:line, libraries are half the
# size, and every edit reloads sooner. The host and the modules share it, so their
# dependencies are built once. (Full debug info, for a debugger: `debug = true`.)
[profile.dev]
debug = "line-tables-only"

# Hashing a library on every reload, optimised even in a debug host.
[profile.dev.package.xxhash-rust]
opt-level = 3

# A debug module's state saved and restored several times faster on every reload: at
# opt-level 1 (not 2 or 3), grove-sdk shares its optimised state code with the modules.
[profile.dev.package.grove-sdk]
opt-level = 1
"#,
        runtime = source.dependency("grove-runtime"),
    )
}

fn host_main(name: &str) -> String {
    format!(
        r#"//! The {name} host: builds the module crate in modules/{name}, runs it at 60 FPS, and
//! swaps its new code in, with its state, every time you save a change to its source or its
//! config.toml. Its state is kept in state/ between runs.
//!
//! `cargo run` starts it; `cargo grove run` runs the same modules with a live dashboard.

use std::path::Path;

use grove_runtime::Engine;

fn main() -> Result<(), grove_runtime::Error> {{
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut engine = Engine::builder().state_dir(root.join("state")).build()?;
    // Builds the crate, applies the config file its Cargo.toml names, loads it, and
    // rebuilds it in the background whenever its sources change.
    let module = engine.watch_crate(root.join("modules/{name}"))?;
    println!("running `{{module}}`: edit modules/{name}/src/lib.rs or config.toml and save; Ctrl-C to stop");
    engine.run()
}}
"#
    )
}

fn module_manifest(name: &str, source: &GroveSource) -> String {
    format!(
        r#"[package]
name = "{name}-module"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: hot-loaded while you develop; rlib: linked statically into a release build.
crate-type = ["cdylib", "rlib"]

[dependencies]
# The library is named `grove`: `use grove::prelude::*`.
grove-sdk = {sdk}
# For the config type's derives.
serde = {{ version = "1", features = ["derive"] }}

[package.metadata.grove]
# The module's config, applied before its first `init` and again on every save.
config = "config.toml"
"#,
        sdk = source.dependency("grove-sdk"),
    )
}

fn module_config(name: &str) -> String {
    format!(
        r#"# The {name} module's config. Edit and save while it runs: the new values apply between two
# frames. A mistake (a misspelt field, a negative speed) is refused with its line, and the
# config in force stays.
speed = 1.0
greeting = "Hello from {name}!"
"#
    )
}

fn module_source(name: &str, type_name: &str) -> String {
    format!(
        r#"//! The {name} module. Its fields are its state: they survive every reload (and, kept in
//! the host's state directory, a restart). Edit this file and save while it runs: the new
//! code takes over between two frames, with the state as it was.

use grove::prelude::*;
use serde::{{Deserialize, Serialize}};

/// The module's config, read from config.toml (named in Cargo.toml). Fields the file
/// leaves out take their default.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {{
    /// How far `position` moves each second.
    pub speed: f64,
    /// What the module says every five seconds.
    pub greeting: String,
}}

impl Default for Settings {{
    fn default() -> Self {{
        Self {{
            speed: 1.0,
            greeting: "Hello from {name}!".to_owned(),
        }}
    }}
}}

#[grove::module(config = Settings)]
#[derive(Default)]
pub struct {type_name} {{
    /// Frames run, over every reload and restart.
    pub frames: u64,
    /// Moves by `speed` each second.
    pub position: f64,
    /// The config in force: handed over again after every reload, so it is not saved.
    #[serde(skip)]
    settings: Settings,
}}

impl Configure for {type_name} {{
    type Config = Settings;

    fn configure(&mut self, settings: Settings) -> Result<(), ConfigError> {{
        if !(settings.speed >= 0.0) {{
            return Err(ConfigError::field("speed", "must be zero or more"));
        }}
        self.settings = settings;
        Ok(())
    }}
}}

impl Module for {type_name} {{
    fn init(&mut self, _ctx: &mut Context) {{
        grove::tracing::info!(frames = self.frames, "{name} ready");
    }}

    fn process(&mut self, ctx: &mut Context) {{
        self.frames += 1;
        self.position += self.settings.speed * f64::from(ctx.delta_secs());
        if ctx.frame().is_multiple_of(300) {{
            grove::tracing::info!(position = self.position, "{{}}", self.settings.greeting);
        }}
    }}

    fn health(&self) -> Health {{
        Health::healthy()
            .metric("frames", self.frames as f64)
            .metric("position", self.position)
    }}
}}
"#
    )
}

fn readme(name: &str) -> String {
    format!(
        r#"# {name}

A [grove](https://github.com/grove-rs/grove) project: a host (`src/main.rs`) that runs the
module crates under `modules/` every frame and swaps in their new code, state kept, when you
save a change.

```sh
cargo grove run      # every module here, with a live dashboard (keys: r reload, u unload, p pause, q quit)
cargo run            # the host in src/main.rs, printing plain lines
```

- `modules/{name}/src/lib.rs`: the module. Its fields are the state that survives reloads.
- `modules/{name}/config.toml`: its config, applied live on every save.
- `state/`: the modules' saved states, restored on the next start (also after a crash).

Add a module: `cargo new --lib modules/another`, give it `crate-type = ["cdylib", "rlib"]`
and the `grove-sdk` dependency (as in `modules/{name}/Cargo.toml`), and `cargo grove run`
runs it too.
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cargo_would_refuse_are_refused_with_the_reason() {
        for (name, why) in [
            ("", "empty"),
            ("1st", "start with a letter"),
            ("my game", "` ` is not allowed"),
            ("fn", "keyword"),
            ("grove", "already uses"),
        ] {
            let error = check_name(name).unwrap_err().to_string();
            assert!(error.contains(why), "{name:?}: {error}");
        }
        check_name("space-shooter_2").unwrap();
    }

    #[test]
    fn type_names_are_camel_case() {
        assert_eq!(camel_case("space-shooter_2"), "SpaceShooter2");
        assert_eq!(camel_case("demo"), "Demo");
    }

    #[test]
    fn paths_are_quoted_for_toml() {
        assert_eq!(toml_string(r#"C:\a "b""#), r#""C:\\a \"b\"""#);
    }

    #[test]
    fn the_host_builds_grove_sdk_so_that_debug_modules_share_its_state_code() {
        // opt-level 1, not 3: only a crate built at 0 or 1 shares its generic instances
        // with the unoptimised module crates.
        let dir = tempfile::tempdir().unwrap();
        create(
            dir.path(),
            Some("demo"),
            &GroveSource::CratesIo("0.1.0".into()),
        )
        .unwrap();
        let manifest = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("\n[profile.dev.package.grove-sdk]\nopt-level = 1\n"),
            "{manifest}"
        );
    }

    #[test]
    fn a_directory_with_files_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let error = create(
            dir.path(),
            Some("demo"),
            &GroveSource::CratesIo("0.1.0".into()),
        )
        .unwrap_err();
        assert!(matches!(error, Error::Exists { .. }), "{error}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
