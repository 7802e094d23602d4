//! Building module crates with cargo, and rebuilding them in the background when their
//! sources change, so that frames never wait for rustc.
//!
//! What the host sees is here: [`BuildOptions`] and [`BuildError`] (and, for the engine,
//! [`BuildEvent`]). The work
//! is split by job: [`cargo`] runs cargo on a crate ([`CrateBuilder`]) and collects its
//! library and diagnostics, [`profile`] chooses what a development build adds to the
//! crate's settings, [`cargo_output`] reads what cargo prints, and [`watch`] watches
//! the crates' sources and rebuilds them on the engine's one builder thread ([`Builds`],
//! a [`BuildWatch`] per crate).

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

mod cargo;
mod cargo_output;
mod dep_info;
mod profile;
#[cfg(test)]
mod test_crate;
mod watch;

pub(crate) use cargo::CrateBuilder;
pub use profile::DevProfile;
pub(crate) use watch::{BuildWatch, Builds};

/// Builds the module crate in `dir` once, as [`Engine::watch_crate`](crate::Engine::watch_crate)
/// does before loading it, and returns its library's path. While no `tracing` subscriber
/// is set, grove's own lines on stderr say that it builds and how far it is.
pub fn build_crate(
    dir: impl AsRef<std::path::Path>,
    options: BuildOptions,
) -> Result<PathBuf, BuildError> {
    CrateBuilder::new(dir.as_ref(), options)?.build_reporting(crate::console::Console::new(true))
}

/// A module crate built and not yet loaded: [`Engine::watch_crate_with`]'s first step,
/// which can run on any thread while the engine's frames go on; the engine's
/// [`Engine::watch_built`] loads it and watches the crate from then on.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use grove_runtime::{BuildOptions, BuiltCrate, Engine};
///
/// let mut engine = Engine::builder().build()?;
/// let build = std::thread::spawn(|| BuiltCrate::build("modules/player", BuildOptions::default()));
/// while !build.is_finished() {
///     engine.run_frames(1); // the other modules run meanwhile
/// }
/// let built = build.join().expect("the build thread")?;
/// engine.watch_built(built)?;
/// # Ok(())
/// # }
/// ```
///
/// [`Engine::watch_crate_with`]: crate::Engine::watch_crate_with
/// [`Engine::watch_built`]: crate::Engine::watch_built
#[derive(Debug)]
pub struct BuiltCrate {
    /// The crate's directory, as given.
    pub(crate) dir: PathBuf,
    pub(crate) builder: CrateBuilder,
    pub(crate) library: PathBuf,
}

impl BuiltCrate {
    /// Builds the module crate in `dir` (grove's own lines on stderr say how far it is,
    /// while no `tracing` subscriber is set).
    pub fn build(
        dir: impl AsRef<std::path::Path>,
        options: BuildOptions,
    ) -> Result<Self, BuildError> {
        Self::build_reporting(dir.as_ref(), options, crate::console::Console::new(true))
    }

    pub(crate) fn build_reporting(
        dir: &std::path::Path,
        options: BuildOptions,
        console: crate::console::Console,
    ) -> Result<Self, BuildError> {
        let builder = CrateBuilder::new(dir, options)?;
        let library = builder.build_reporting(console)?;
        Ok(Self {
            dir: dir.to_owned(),
            builder,
            library,
        })
    }

    /// The library the build made.
    pub fn library(&self) -> &std::path::Path {
        &self.library
    }
}

/// How to build a module crate.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// `--release`.
    pub release: bool,
    /// `--target-dir` (relative to the current directory); cargo's default (or
    /// `CARGO_TARGET_DIR`) when `None`.
    pub target_dir: Option<PathBuf>,
    /// `--features`.
    pub features: Vec<String>,
    /// What grove adds to a development build (not `release`): by default, debug info
    /// reduced to line tables and grove-sdk at opt-level 1, each unless the crate's own
    /// settings set it ([`DevProfile`]).
    pub dev_profile: DevProfile,
}

/// What a background build reports, in order: `Started`, then `Finished` or `Failed`.
#[derive(Debug)]
pub(crate) enum BuildEvent {
    /// A source changed and a build started.
    Started,
    /// The build succeeded; the library is at `artifact`.
    Finished {
        /// The crate's cdylib.
        artifact: PathBuf,
        /// How long cargo ran.
        took: Duration,
        /// Whether the library differs from the one the build before made: a build after an
        /// edit that changes no code (a comment, a touched file) leaves it as it was.
        changed: bool,
    },
    /// The build failed. The library from the last successful build is still in place.
    Failed {
        /// Why.
        error: BuildError,
    },
}

/// A module crate that could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The directory is not a crate that can be built.
    #[error("{dir} is not a module crate: {reason}")]
    NotACrate {
        /// The directory given.
        dir: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },

    /// cargo could not be started.
    #[error(
        "cannot start `{cargo}` to build {dir}: {source}; is cargo on PATH? (or set CARGO to \
         its path)",
        cargo = .cargo.to_string_lossy()
    )]
    CargoUnavailable {
        /// The program run: `$CARGO`, or `cargo`.
        cargo: OsString,
        /// The crate's directory.
        dir: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },

    /// cargo's output could not be read.
    #[error("lost cargo's output while building crate `{krate}`: {source}")]
    CargoOutput {
        /// The crate's package name.
        krate: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },

    /// The crate does not compile.
    #[error("crate `{krate}` in {dir} failed to build:{}", first_error(.errors))]
    Compile {
        /// The crate's package name.
        krate: String,
        /// The crate's directory.
        dir: PathBuf,
        /// The errors as rustc renders them (or cargo's own error, when it failed before
        /// compiling), in order.
        errors: Vec<String>,
        /// The warnings as rustc renders them, in order.
        warnings: Vec<String>,
    },

    /// The crate built, but produced no shared library to load.
    #[error(
        "crate `{krate}` builds no cdylib, so there is no library to load: add \
         `crate-type = [\"cdylib\", \"rlib\"]` under [lib] in {manifest}"
    )]
    NoCdylib {
        /// The crate's package name.
        krate: String,
        /// Its Cargo.toml.
        manifest: PathBuf,
    },

    /// The crate's sources cannot be watched.
    #[error("cannot watch {dir} for changes: {source}")]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: crate::WatchError,
    },

    /// The engine's builder thread could not be started.
    #[error("cannot start the thread that rebuilds watched crates: {source}")]
    Thread {
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

impl BuildError {
    /// Every diagnostic of a failed compile, rendered as rustc prints them: warnings first,
    /// then errors, so that the errors end up at the bottom of a terminal.
    pub fn rendered(&self) -> Option<String> {
        match self {
            BuildError::Compile {
                errors, warnings, ..
            } => Some(
                warnings
                    .iter()
                    .chain(errors)
                    .map(|d| d.trim_end())
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            ),
            _ => None,
        }
    }
}

fn first_error(errors: &[String]) -> String {
    let Some(first) = errors.first() else {
        return " cargo reported no error message".into();
    };
    match errors.len() {
        1 => format!("\n{}", first.trim_end()),
        n => format!("\n{}\n({} more errors)", first.trim_end(), n - 1),
    }
}
