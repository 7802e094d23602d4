//! Reading what cargo says: its `--message-format=json` messages (compiler diagnostics,
//! built artifacts), its plain error text when it fails before compiling, and the crate's
//! own Cargo.toml.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ChildStdout;

use serde::Deserialize;

/// What cargo's JSON messages said.
#[derive(Debug, Default)]
pub(crate) struct Messages {
    pub(crate) errors: Vec<String>,
    pub(crate) warnings: Vec<String>,
    /// (manifest, library) of every cdylib built.
    pub(crate) cdylibs: Vec<(PathBuf, PathBuf)>,
}

#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<CargoTarget>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
    #[serde(default)]
    message: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct CargoTarget {
    #[serde(default)]
    kind: Vec<String>,
    #[serde(default)]
    crate_types: Vec<String>,
}

#[derive(Deserialize)]
struct Diagnostic {
    level: String,
    message: String,
    #[serde(default)]
    rendered: Option<String>,
    #[serde(default)]
    spans: Vec<serde::de::IgnoredAny>,
}

pub(crate) fn read_messages(stdout: ChildStdout) -> io::Result<Messages> {
    let mut messages = Messages::default();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        match serde_json::from_str::<CargoMessage>(&line) {
            Ok(message) => messages.add(message),
            Err(e) => tracing::trace!(line, error = %e, "not a cargo message"),
        }
    }
    Ok(messages)
}

impl Messages {
    fn add(&mut self, message: CargoMessage) {
        match message.reason.as_str() {
            "compiler-message" => {
                let Some(diagnostic) = message.message else {
                    return;
                };
                // rustc's closing summaries ("aborting due to...", "2 warnings emitted")
                // have no span and say nothing new.
                let summary = diagnostic.spans.is_empty()
                    && (diagnostic.message.starts_with("aborting due to")
                        || diagnostic.message.ends_with("emitted"));
                if summary {
                    return;
                }
                let rendered = diagnostic
                    .rendered
                    .unwrap_or_else(|| format!("{}: {}", diagnostic.level, diagnostic.message));
                if diagnostic.level.starts_with("error") {
                    self.errors.push(rendered);
                } else if diagnostic.level == "warning" {
                    self.warnings.push(rendered);
                }
            }
            "compiler-artifact" => {
                let is_cdylib = message.target.is_some_and(|target| {
                    target
                        .kind
                        .iter()
                        .chain(&target.crate_types)
                        .any(|k| k == "cdylib")
                });
                if !is_cdylib {
                    return;
                }
                let library = message
                    .filenames
                    .into_iter()
                    .find(|f| f.extension() == Some(OsStr::new("so")));
                if let (Some(manifest), Some(library)) = (message.manifest_path, library) {
                    self.cdylibs.push((manifest, library));
                }
            }
            _ => {}
        }
    }
}

/// `(built, total)` from a line of cargo's progress bar
/// (`    Building [===>     ] 12/40: serde, syn`).
pub(crate) fn parse_progress(line: &str) -> Option<(usize, usize)> {
    let bar = line.trim_start().strip_prefix("Building [")?;
    let (_, counts) = bar.split_once("] ")?;
    let counts = counts.split(':').next()?.trim();
    let (done, total) = counts.split_once('/')?;
    Some((done.parse().ok()?, total.parse().ok()?))
}

/// cargo's own error, when it failed without a compiler error (a bad Cargo.toml, a
/// dependency that cannot be fetched...): its stderr from the first `error` on.
pub(crate) fn cargo_error(stderr: &str, status: Option<std::process::ExitStatus>) -> String {
    let start = stderr
        .lines()
        .position(|line| line.trim_start().starts_with("error"))
        .unwrap_or(0);
    let text = stderr.lines().skip(start).collect::<Vec<_>>().join("\n");
    match (text.trim(), status) {
        ("", Some(status)) => format!("cargo failed ({status}) without an error message"),
        ("", None) => "cargo was stopped".into(),
        (text, _) => text.to_owned(),
    }
}

pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (a.canonicalize(), b.canonicalize()),
            (Ok(a), Ok(b)) if a == b
        )
}

/// What is read from a Cargo.toml.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// `package.name`.
    pub(crate) package: Option<String>,
    /// Whether it has a `[workspace]` table.
    pub(crate) workspace: bool,
}

/// Reads `package.name` and the presence of `[workspace]`: line by line, enough for the
/// Cargo.toml files cargo writes and people keep.
pub(crate) fn parse_manifest(text: &str) -> Manifest {
    let mut manifest = Manifest::default();
    let mut table = String::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(header) = line.strip_prefix('[') {
            table = header
                .trim_matches(|c| c == '[' || c == ']' || c == ' ')
                .to_owned();
            manifest.workspace |= table == "workspace";
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        match (table.as_str(), key.trim()) {
            ("package", "name") => manifest.package = Some(value.to_owned()),
            ("", "package.name") => manifest.package = Some(value.to_owned()),
            _ => {}
        }
    }
    manifest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_read() {
        let manifest = parse_manifest(
            "# a module\n[package]\nname = \"hello\" # the name\nversion = \"0.1.0\"\n\n\
             [dependencies]\nname = \"not this\"\n\n[workspace]\nmembers = []\n",
        );
        assert_eq!(
            manifest,
            Manifest {
                package: Some("hello".into()),
                workspace: true
            }
        );
        assert_eq!(
            parse_manifest("[workspace]\nmembers = [\"a\"]\n").package,
            None
        );
        assert!(!parse_manifest("[package]\nname = 'x'\n").workspace);
        assert_eq!(
            parse_manifest("[package]\nname = 'x'\n").package.as_deref(),
            Some("x")
        );
    }

    #[test]
    fn compiler_messages_are_collected() {
        let mut messages = Messages::default();
        let lines = [
            r#"{"reason":"compiler-message","message":{"level":"warning","message":"unused","rendered":"warning: unused\n","spans":[{}]}}"#,
            r#"{"reason":"compiler-message","message":{"level":"error","message":"bad","rendered":"error: bad\n","spans":[{}]}}"#,
            r#"{"reason":"compiler-message","message":{"level":"error","message":"aborting due to 1 previous error","rendered":"error: aborting\n","spans":[]}}"#,
            r#"{"reason":"compiler-message","message":{"level":"failure-note","message":"For more information","rendered":"For more\n","spans":[]}}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/c/Cargo.toml","target":{"kind":["cdylib","rlib"],"crate_types":["cdylib","rlib"]},"filenames":["/t/libc.so","/t/libc.rlib"]}"#,
            r#"{"reason":"compiler-artifact","manifest_path":"/d/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"]},"filenames":["/t/libd.rlib"]}"#,
            r#"{"reason":"build-finished","success":false}"#,
        ];
        for line in lines {
            messages.add(serde_json::from_str(line).unwrap());
        }
        assert_eq!(messages.errors, ["error: bad\n"]);
        assert_eq!(messages.warnings, ["warning: unused\n"]);
        assert_eq!(
            messages.cdylibs,
            [(PathBuf::from("/c/Cargo.toml"), PathBuf::from("/t/libc.so"))]
        );
    }

    #[test]
    fn progress_lines_are_read() {
        assert_eq!(
            parse_progress("    Building [===>     ] 12/40: serde, syn   "),
            Some((12, 40))
        );
        assert_eq!(parse_progress("    Building [====] 40/40"), Some((40, 40)));
        assert_eq!(parse_progress("   Compiling serde v1.0.0"), None);
        assert_eq!(parse_progress("    Building [==] a/b: x"), None);
    }

    #[test]
    fn cargo_errors_without_compiler_messages_are_kept() {
        let stderr = "    Updating crates.io index\nerror: failed to parse manifest at `/c/Cargo.toml`\n\nCaused by:\n  bad\n";
        let error = cargo_error(stderr, None);
        assert!(
            error.starts_with("error: failed to parse manifest"),
            "{error}"
        );
        assert!(error.contains("Caused by"), "{error}");
    }
}
