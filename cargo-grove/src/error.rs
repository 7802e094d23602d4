//! What `cargo grove` can fail at, each naming the thing and what to do.

use std::io;
use std::path::PathBuf;

/// A `cargo grove` failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `cargo grove new` was given a name cargo or Rust would refuse.
    #[error("cannot name a project `{name}`: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// Why not.
        reason: String,
    },

    /// `cargo grove new` would overwrite files.
    #[error("{path} already exists and is not empty: give a new directory (nothing was written)")]
    Exists {
        /// The directory.
        path: PathBuf,
    },

    /// `--grove-path` does not point at a grove checkout.
    #[error(
        "{path} is not a grove checkout ({reason}): give the directory that holds grove-sdk/ \
         and grove-runtime/"
    )]
    NotACheckout {
        /// The path given.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },

    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },

    /// `cargo metadata` failed: there is no Cargo project here, or its manifest is broken.
    #[error("cannot read the cargo project at {path}: {message}")]
    Metadata {
        /// The directory or manifest asked about.
        path: PathBuf,
        /// What cargo said.
        message: String,
    },

    /// A crate given on the command line is not a module crate of the project.
    #[error("{given}: {reason}")]
    NotAModuleCrate {
        /// What was given.
        given: String,
        /// Why it is not one, and what would be.
        reason: String,
    },

    /// No module crate was given and the workspace has none.
    #[error(
        "the workspace at {root} has no module crate (a member with crate-type \"cdylib\" that \
         depends on grove-sdk): give module crate directories, or start a project with \
         `cargo grove new <name>`"
    )]
    NoModules {
        /// The workspace root.
        root: PathBuf,
    },

    /// The terminal could not be set up or drawn on.
    #[error("terminal: {0}")]
    Terminal(#[source] io::Error),

    /// The engine refused something (a build, a load, the state directory).
    #[error(transparent)]
    Engine(#[from] grove_runtime::Error),

    /// `cargo grove check` found the module would be refused or its state would not carry.
    #[error("{0}")]
    CheckFailed(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
