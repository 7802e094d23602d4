//! Which module crates `cargo grove run` hosts, and where their states are kept: cargo's
//! own view of the workspace (`cargo metadata`), not a guess from the file tree.
//!
//! A module crate is a workspace member with a `cdylib` target that depends on `grove-sdk`.
//! The state directory is `[workspace.metadata.grove] state-dir` (relative to the workspace
//! root), or `grove-state/` in the target directory.

use std::path::{Path, PathBuf};

use cargo_metadata::{Metadata, MetadataCommand, Package, TargetKind};

use crate::error::{Error, Result};

/// A module crate to build and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleCrate {
    /// Its package name.
    pub package: String,
    /// Its directory (where its `Cargo.toml` is).
    pub dir: PathBuf,
}

/// The project `cargo grove run` works in.
#[derive(Debug, Clone)]
pub struct Project {
    /// The workspace root.
    pub root: PathBuf,
    /// The modules to host, in the order given (or the workspace's order).
    pub modules: Vec<ModuleCrate>,
    /// Where their states are kept, unless the command line says otherwise.
    pub state_dir: PathBuf,
}

/// The project around `manifest_path` (or the current directory), hosting `given` (package
/// names of the workspace, or crate directories), or every module crate of the workspace
/// when none is given.
///
/// When every crate given is a directory (and no manifest is), each is read from its own
/// directory: they need not be in the project here, nor need there be one. Their states
/// are then kept in the `state-dir` of the first one's workspace that sets it, else in the
/// project here's, else where the first one's workspace keeps them by default
/// (`grove-state/` in its target directory).
pub fn discover(manifest_path: Option<&Path>, given: &[String]) -> Result<Project> {
    if manifest_path.is_none()
        && !given.is_empty()
        && given
            .iter()
            .all(|g| Path::new(g).join("Cargo.toml").is_file())
    {
        return discover_dirs(given);
    }
    let metadata = metadata(manifest_path)?;
    let root = metadata.workspace_root.clone().into_std_path_buf();
    let modules = if given.is_empty() {
        let modules: Vec<_> = metadata
            .workspace_packages()
            .into_iter()
            .filter(|p| is_module(p))
            .map(module_crate)
            .collect();
        if modules.is_empty() {
            return Err(Error::NoModules { root });
        }
        modules
    } else {
        given
            .iter()
            .map(|g| resolve(&metadata, g))
            .collect::<Result<_>>()?
    };
    Ok(Project {
        state_dir: state_dir(&metadata, &root)?,
        root,
        modules,
    })
}

/// `cargo metadata` of the project at `manifest_path`, or around the current directory.
fn metadata(manifest_path: Option<&Path>) -> Result<Metadata> {
    let mut command = MetadataCommand::new();
    command.no_deps();
    if let Some(manifest) = manifest_path {
        command.manifest_path(manifest);
    }
    let asked = manifest_path.map_or_else(|| PathBuf::from("."), Path::to_owned);
    command.exec().map_err(|e| Error::Metadata {
        path: asked,
        message: cargo_said(&e),
    })
}

/// The project for crate directories given on the command line, each read from its own
/// directory.
fn discover_dirs(given: &[String]) -> Result<Project> {
    // The project here, if there is one: its state directory is the default.
    let here = metadata(None).ok();
    let mut modules = Vec::new();
    let mut configured = None;
    let mut first_root = None;
    let mut first_default = None;
    for dir in given {
        let dir = Path::new(dir);
        let metadata = metadata(Some(&dir.join("Cargo.toml")))?;
        let root = metadata.workspace_root.clone().into_std_path_buf();
        let canonical = dir.canonicalize().map_err(|e| Error::Metadata {
            path: dir.to_owned(),
            message: e.to_string(),
        })?;
        let package = metadata.workspace_packages().into_iter().find(|p| {
            p.manifest_path
                .parent()
                .and_then(|d| d.canonicalize().ok())
                .is_some_and(|d| d == canonical)
        });
        let not_a_module = |reason: String| Error::NotAModuleCrate {
            given: dir.display().to_string(),
            reason,
        };
        match package {
            Some(package) if is_module(package) => modules.push(module_crate(package)),
            Some(package) => {
                return Err(not_a_module(format!(
                    "package `{}` is not a module crate: it needs `crate-type = [\"cdylib\", \
                     \"rlib\"]` under [lib] and a grove-sdk dependency",
                    package.name
                )));
            }
            None => {
                return Err(not_a_module(
                    "cargo does not list it as a package of its workspace".to_owned(),
                ));
            }
        }
        if configured.is_none() && state_dir_setting(&metadata).is_some() {
            configured = Some(state_dir(&metadata, &root)?);
        }
        if first_root.is_none() {
            first_default = Some(state_dir(&metadata, &root)?);
            first_root = Some(root);
        }
    }
    let first_root = first_root.unwrap_or_default();
    let (root, state_dir) = match (configured, here) {
        (Some(state_dir), here) => (
            here.map_or(first_root, |h| h.workspace_root.into_std_path_buf()),
            state_dir,
        ),
        (None, Some(here)) => {
            let root = here.workspace_root.clone().into_std_path_buf();
            let state_dir = state_dir(&here, &root)?;
            (root, state_dir)
        }
        // The default of the first crate's own workspace: where `cargo grove run` inside
        // it keeps them too. (Not a `state/` beside the crate: in a `members = ["modules/*"]`
        // workspace, cargo would take it for a member and refuse to build.)
        (None, None) => (first_root, first_default.unwrap_or_default()),
    };
    Ok(Project {
        root,
        modules,
        state_dir,
    })
}

/// The first line cargo wrote to stderr, or the error itself.
fn cargo_said(error: &cargo_metadata::Error) -> String {
    match error {
        cargo_metadata::Error::CargoMetadata { stderr } => stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("cargo metadata failed")
            .trim_start_matches("error: ")
            .to_owned(),
        other => other.to_string(),
    }
}

fn is_module(package: &Package) -> bool {
    let cdylib = package
        .targets
        .iter()
        .any(|t| t.is_kind(TargetKind::CDyLib));
    cdylib && package.dependencies.iter().any(|d| d.name == "grove-sdk")
}

fn module_crate(package: &Package) -> ModuleCrate {
    ModuleCrate {
        package: package.name.to_string(),
        dir: package
            .manifest_path
            .parent()
            .map_or_else(PathBuf::new, |p| p.to_path_buf().into_std_path_buf()),
    }
}

/// A package name of the workspace, or a crate directory (which need not be a member).
fn resolve(metadata: &Metadata, given: &str) -> Result<ModuleCrate> {
    let packages = metadata.workspace_packages();
    let path = Path::new(given);
    let found = packages
        .iter()
        .find(|p| p.name.as_str() == given)
        .copied()
        .or_else(|| {
            let dir = path.canonicalize().ok()?;
            packages.iter().copied().find(|p| {
                p.manifest_path
                    .parent()
                    .and_then(|d| d.canonicalize().ok())
                    .is_some_and(|d| d == dir)
            })
        });
    let not_a_module = |reason: String| Error::NotAModuleCrate {
        given: given.to_owned(),
        reason,
    };
    match found {
        Some(package) if is_module(package) => Ok(module_crate(package)),
        Some(package) => Err(not_a_module(format!(
            "package `{}` is not a module crate: it needs `crate-type = [\"cdylib\", \"rlib\"]` \
             under [lib] and a grove-sdk dependency",
            package.name
        ))),
        None if path.join("Cargo.toml").is_file() => Ok(ModuleCrate {
            package: path
                .file_name()
                .map_or_else(|| given.to_owned(), |n| n.to_string_lossy().into_owned()),
            dir: path.to_owned(),
        }),
        None => {
            let members: Vec<_> = packages
                .iter()
                .filter(|p| is_module(p))
                .map(|p| p.name.to_string())
                .collect();
            Err(not_a_module(format!(
                "no package of that name in the workspace and no Cargo.toml in such a directory; \
                 the workspace's module crates: {}",
                if members.is_empty() {
                    "none".to_owned()
                } else {
                    members.join(", ")
                }
            )))
        }
    }
}

/// `[workspace.metadata.grove] state-dir`, if set.
fn state_dir_setting(metadata: &Metadata) -> Option<&serde_json::Value> {
    metadata
        .workspace_metadata
        .get("grove")
        .and_then(|g| g.get("state-dir"))
}

fn state_dir(metadata: &Metadata, root: &Path) -> Result<PathBuf> {
    match state_dir_setting(metadata) {
        None => Ok(metadata
            .target_directory
            .clone()
            .into_std_path_buf()
            .join("grove-state")),
        Some(serde_json::Value::String(dir)) if !dir.is_empty() => Ok(root.join(dir)),
        Some(other) => Err(Error::Metadata {
            path: root.join("Cargo.toml"),
            message: format!(
                "`workspace.metadata.grove.state-dir` is {other}; give a directory, relative \
                 to the workspace root, as a string: state-dir = \"state\""
            ),
        }),
    }
}
