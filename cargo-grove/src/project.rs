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
pub fn discover(manifest_path: Option<&Path>, given: &[String]) -> Result<Project> {
    let mut command = MetadataCommand::new();
    command.no_deps();
    if let Some(manifest) = manifest_path {
        command.manifest_path(manifest);
    }
    let asked = manifest_path.map_or_else(|| PathBuf::from("."), Path::to_owned);
    let metadata = command.exec().map_err(|e| Error::Metadata {
        path: asked.clone(),
        message: cargo_said(&e),
    })?;
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

fn state_dir(metadata: &Metadata, root: &Path) -> Result<PathBuf> {
    let setting = metadata
        .workspace_metadata
        .get("grove")
        .and_then(|g| g.get("state-dir"));
    match setting {
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
