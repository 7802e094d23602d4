//! [`Error`]: everything that can go wrong loading, running or reloading a module.
//!
//! Each variant names the module and the library file involved, and says what to do. None
//! of them means the host is in trouble: a refused load or reload leaves the running
//! version and its state exactly as they were.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// A call into a module, as named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Call {
    /// `create_module`: building the default value.
    Create,
    /// `Module::init`.
    Init,
    /// `Module::process`.
    Process,
    /// `Module::shutdown`.
    Shutdown,
    /// Saving the state for a reload.
    SaveState,
    /// Restoring the state after a reload.
    LoadState,
    /// Dropping the module's value.
    Destroy,
    /// `Configure::configure`: taking a config.
    Configure,
    /// `Module::health`.
    Health,
}

impl Call {
    /// Every call, in declaration order.
    pub const ALL: [Call; 9] = [
        Call::Create,
        Call::Init,
        Call::Process,
        Call::Shutdown,
        Call::SaveState,
        Call::LoadState,
        Call::Destroy,
        Call::Configure,
        Call::Health,
    ];

    /// The call's name, as the module's API spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Call::Create => "create",
            Call::Init => "init",
            Call::Process => "process",
            Call::Shutdown => "shutdown",
            Call::SaveState => "save_state",
            Call::LoadState => "load_state",
            Call::Destroy => "destroy",
            Call::Configure => "configure",
            Call::Health => "health",
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong in grove-runtime.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The library file could not be read.
    #[error("cannot read module library {path}: {source}")]
    Read {
        /// The library file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: Arc<io::Error>,
    },

    /// The file is not a grove module library (not ELF, truncated, no grove exports...).
    #[error("{path} is not a grove module library: {reason}")]
    NotAModule {
        /// The library file.
        path: PathBuf,
        /// What is wrong with it, and what to do.
        reason: String,
    },

    /// The library was built against a grove ABI this host does not speak.
    #[error(
        "{path}: module `{module}` uses grove ABI version {found}{}, \
         this host supports versions {min} to {max} (grove-sdk {host_sdk}); \
         rebuild the module against grove-sdk {host_sdk}",
        .module_sdk.as_ref().map(|v| format!(" (grove-sdk {v})")).unwrap_or_default()
    )]
    AbiMismatch {
        /// The library file.
        path: PathBuf,
        /// The module's name, as far as it could be read.
        module: String,
        /// The library's ABI version.
        found: u32,
        /// The oldest version this host loads.
        min: u32,
        /// The newest version this host loads.
        max: u32,
        /// The library's grove-sdk version, when its header says it in a way this host
        /// can read.
        module_sdk: Option<String>,
        /// The host's grove-sdk version.
        host_sdk: String,
    },

    /// The dynamic loader refused the library (missing dependency, wrong architecture, a
    /// staging directory mounted `noexec`...).
    #[error("cannot open module library {path} (staged as {staged}): {reason}")]
    Open {
        /// The library file.
        path: PathBuf,
        /// The private copy that was opened.
        staged: PathBuf,
        /// What the dynamic loader said, and what it means.
        reason: String,
        /// The dynamic loader's error.
        #[source]
        source: Arc<libloading::Error>,
    },

    /// The library was built with `panic = "abort"`: its first panic would end the host.
    #[error(
        "refusing to load {path}: module `{module}` was built with panic = \"abort\", so its \
         first panic would end this host process too; build it with panic = \"unwind\" \
         (remove `panic = \"abort\"` from the [profile] that builds it, or set \
         `[profile.dev] panic = \"unwind\"` for development)"
    )]
    PanicAbort {
        /// The library file.
        path: PathBuf,
        /// The module's name.
        module: String,
    },

    /// The library could have been replaced by another user, and the host did not allow
    /// that.
    #[error("refusing to load {path}: {reason}")]
    Untrusted {
        /// The library file.
        path: PathBuf,
        /// Why, and how to allow it.
        reason: String,
    },

    /// The staging directory, where each load gets its private copy, failed.
    #[error("cannot stage module library {path}: {source}")]
    Staging {
        /// The file or directory involved.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: Arc<io::Error>,
    },

    /// The module's code panicked. The panic was contained.
    #[error(
        "module `{module}` panicked in {call}: {message}{}",
        .path.as_ref().map(|p| format!(" (library {})", p.display())).unwrap_or_default()
    )]
    Panicked {
        /// The module.
        module: String,
        /// The library it was loaded from; `None` for a module linked into the host, or
        /// when the panic ended the thread the module ran on.
        path: Option<PathBuf>,
        /// The call that panicked.
        call: Call,
        /// The panic's message and location.
        message: String,
    },

    /// A call into the module failed without a panic (for instance, a state that does not
    /// decode into the new version).
    #[error("module `{module}` failed in {call}: {message} (library {path})")]
    Failed {
        /// The module.
        module: String,
        /// The library it was loaded from.
        path: PathBuf,
        /// The call that failed.
        call: Call,
        /// What the module reported.
        message: String,
    },

    /// The module panicked in an earlier frame and is not run until a reload replaces it.
    #[error("module `{module}` is faulted and skipped until it is reloaded: {message}")]
    Faulted {
        /// The module.
        module: String,
        /// The panic that faulted it.
        message: String,
    },

    /// A reload was refused because the new version could not take over. The running
    /// version and its state are untouched.
    #[error(
        "reload of module `{module}` refused, generation {generation} {}: {source}",
        if *faulted { "stays faulted (skipped until a version loads)" } else { "keeps running" }
    )]
    ReloadRefused {
        /// The module.
        module: String,
        /// The generation that keeps running (or stays faulted).
        generation: u64,
        /// Whether that generation is faulted: it panicked, and is skipped, state kept,
        /// until a version loads.
        faulted: bool,
        /// Why the new version was refused.
        #[source]
        source: Box<Error>,
    },

    /// The new version cannot hold some values of the state exactly, and the engine
    /// refuses lossy changes ([`LossyPolicy::Refuse`](crate::LossyPolicy::Refuse)).
    #[error(
        "the new version of module `{module}` cannot hold {} value(s) of its state exactly ({}): \
         give the field a type that holds them, convert them in `Module::migrate`, accept the \
         loss with `EngineBuilder::lossy_state(LossyPolicy::Warn)`, or start the new version \
         from its default with `Engine::reload_fresh` (the old state is written to a file)",
        report.lossy_total,
        crate::state_policy::lossy_values(report)
    )]
    LossyState {
        /// The module.
        module: String,
        /// What the new version did to the state.
        report: Box<grove::state::FieldReport>,
    },

    /// The new version's state shares no field with the running one's: all of it would be
    /// dropped. Refused unless the engine allows it
    /// ([`EngineBuilder::allow_unrelated_state`](crate::EngineBuilder::allow_unrelated_state)).
    #[error(
        "the new version of module `{module}` (type `{new_type}`) shares no field with the \
         running one's state (type `{old_type}`): all of it would be dropped{}; to start the \
         new version from its default on purpose, use `Engine::reload_fresh` (the old state is \
         written to a file) or `EngineBuilder::allow_unrelated_state(true)`",
        crate::state_policy::rename_hint(report)
    )]
    UnrelatedState {
        /// The module.
        module: String,
        /// The running version's type.
        old_type: String,
        /// The new version's type.
        new_type: String,
        /// What the new version did to the state.
        report: Box<grove::state::FieldReport>,
    },

    /// The old state could not be written to a file before a fresh start
    /// ([`Engine::reload_fresh`](crate::Engine::reload_fresh)): the reload is refused, so
    /// that nothing is lost.
    #[error(
        "the state of module `{module}` could not be written to a file ({}), so it is not \
         dropped: give the engine a writable state_dir",
        tried.iter().map(|(path, error)| format!("{}: {error}", path.display())).collect::<Vec<_>>().join("; ")
    )]
    OldStateNotSaved {
        /// The module.
        module: String,
        /// Each place tried, and what the OS said.
        tried: Vec<(PathBuf, String)>,
    },

    /// The new library holds a different module than the one being reloaded.
    #[error(
        "{path} holds module `{found}`, not `{expected}`: point the reload at `{expected}`'s library"
    )]
    WrongModule {
        /// The new library.
        path: PathBuf,
        /// The module being reloaded.
        expected: String,
        /// The module the library holds.
        found: String,
    },

    /// No module of that name is in the engine.
    #[error(
        "no module named `{module}` ({})",
        if known.is_empty() { "none is loaded".to_owned() } else { format!("loaded: {}", known.join(", ")) }
    )]
    UnknownModule {
        /// The name asked for.
        module: String,
        /// The modules there are.
        known: Vec<String>,
    },

    /// The module was shut down when the engine stopped (`run` returned, or `stop` ran):
    /// its state went with it (into its snapshot, with a state directory).
    #[error(
        "module `{module}` was shut down when the engine stopped: read or set its state \
         while the engine runs (between frames, e.g. after `run_frames`), or from its \
         snapshot in the state directory"
    )]
    ShutDown {
        /// The module.
        module: String,
    },

    /// A module of that name is already in the engine.
    #[error(
        "a module named `{module}` is already loaded: give the new one another name (`#[grove::module(name = \"...\")]`)"
    )]
    DuplicateModule {
        /// The name.
        module: String,
    },

    /// The module is linked into the host: it has no library to reload.
    #[error("module `{module}` is linked statically: it has no library to reload")]
    NotReloadable {
        /// The module.
        module: String,
    },

    /// The module is linked into the host without its state type
    /// ([`StaticModule::stateless`](crate::StaticModule::stateless)): its state cannot be
    /// read or replaced.
    #[error(
        "module `{module}` was added without its state type (`StaticModule::stateless`): its state cannot be read or set; add it with `Engine::add_static`, which takes any serde module (every `#[grove::module]` type is one)"
    )]
    NoState {
        /// The module.
        module: String,
    },

    /// A static module's state could not be saved, or a state given to it did not decode;
    /// its state is unchanged.
    #[error("module `{module}` failed in {call}: {message}; its state is unchanged")]
    StateFailed {
        /// The module.
        module: String,
        /// [`Call::SaveState`] or [`Call::LoadState`].
        call: Call,
        /// What the state code said, naming the field.
        message: String,
    },

    /// A module's state could not be decoded into the type asked for.
    #[error("state of module `{module}` does not decode into the requested type: {message}")]
    State {
        /// The module.
        module: String,
        /// What serde said, naming the field.
        message: String,
    },

    /// A config was refused: a file that does not parse, an unknown field, a value of the
    /// wrong type, or the module's `configure` said no (or panicked). The config in force
    /// is unchanged.
    #[error(
        "config of module `{module}` refused ({at}): {issue}; the config in force is unchanged"
    )]
    ConfigRefused {
        /// The module.
        module: String,
        /// Where the config came from, and for a file the line of the field.
        at: crate::config::ConfigLocation,
        /// The field (empty for the config as a whole) and what is wrong with it.
        issue: grove::abi::ConfigIssue,
    },

    /// A module crate's manifest says something grove cannot use (its
    /// `[package.metadata.grove]` table).
    #[error("cannot use {path}: {reason}")]
    Manifest {
        /// The crate's `Cargo.toml`.
        path: PathBuf,
        /// What is wrong, and how to write it.
        reason: String,
    },

    /// A config file could not be read (or its directory watched).
    #[error("cannot read config file {path} of module `{module}`: {source}")]
    ConfigFile {
        /// The module.
        module: String,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: Arc<io::Error>,
    },

    /// The module declares no config type, so it cannot be configured.
    #[error(
        "module `{module}` takes no config: declare one with `#[grove::module(config = MyConfig)]` and `impl grove::Configure for ...`"
    )]
    NoConfig {
        /// The module.
        module: String,
    },

    /// A host publication or subscription did not go through.
    #[error("{source}")]
    Bus {
        /// What was wrong (a bad topic, a payload that cannot be encoded).
        #[source]
        source: grove::BusError,
    },

    /// The state directory cannot be used (made, written, flushed).
    #[error("cannot keep snapshots in {path}: {source}; give a writable directory")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: Arc<io::Error>,
    },

    /// A snapshot file cannot be used (read by
    /// [`read_saved_state`](crate::read_saved_state)).
    #[error("the snapshot {path} of module `{module}` cannot be used: {problem}")]
    BadSnapshot {
        /// The module.
        module: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// A module's last snapshot could not be written (at shutdown): a restart would resume
    /// from an older one.
    #[error("the last snapshot of module `{module}` was not written: {message}")]
    Snapshot {
        /// The module.
        module: String,
        /// Why.
        message: String,
    },

    /// Building a watched module crate failed; the running version is kept.
    #[error("module crate {dir}: {source}")]
    Build {
        /// The crate's directory.
        dir: PathBuf,
        /// What went wrong, with the compiler's diagnostics.
        #[source]
        source: Arc<crate::builder::BuildError>,
    },

    /// The library file could not be watched for new versions.
    #[error("cannot watch {path} for new versions: {source}")]
    Watch {
        /// The library file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Arc<crate::watch::WatchError>,
    },

    /// Two settings given to an [`EngineBuilder`](crate::EngineBuilder) contradict each
    /// other: one of them would have been ignored.
    #[error("EngineBuilder::{setting} contradicts EngineBuilder::{other}: {advice}")]
    ConflictingSettings {
        /// The setting that would have been ignored.
        setting: &'static str,
        /// The setting that overrides it.
        other: &'static str,
        /// What to do.
        advice: &'static str,
    },

    /// Ctrl-C / SIGTERM handling could not be set up.
    #[error("cannot install the Ctrl-C/SIGTERM handler: {source}")]
    Signal {
        /// What the OS said.
        #[source]
        source: Arc<io::Error>,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message of a panic caught on the host side.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}
