//! [`LoadedModule`]: a module running from a library file, and the reload transaction that
//! replaces its code while keeping its state.
//!
//! The transaction never touches the running version until the new one has proven itself:
//! stage and open the new library, create its value, move the state across, run its `init`.
//! Any failure on the way drops the new version; the old one runs the next frame as if
//! nothing happened. Only then is the old value destroyed, its library closed and checked
//! to be unmapped, and its copy deleted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grove::abi::{CONFIG_LENIENT, CONFIG_STRICT, ConfigApplied, ConfigIssue, FrameInfo};
use grove::state::{FieldReport, StateFormat};
use serde_json::Value;

use crate::config::{ConfigOrigin, GivenConfig};
use crate::error::{Call, Error, Result};
use crate::ffi::calls::ModuleCalls;
use crate::ffi::instance::Instance;
use crate::ffi::library::{Admit, HeaderInfo, Library, Snapshot, Unmapped, admit_any};
use crate::ffi::staging::Staging;
use crate::state_policy::StatePolicy;

/// A new version ready to take over.
struct Prepared {
    instance: Instance,
    /// The config in force for it.
    config: Option<Value>,
    /// The config fields it dropped.
    config_dropped: Vec<ConfigIssue>,
    format: StateFormat,
    state_bytes: usize,
    fields: Option<FieldReport>,
    /// A fresh start's file holding the old state.
    old_state: Option<PathBuf>,
}

/// What a new version starts from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Carry<'a> {
    /// The running version's state.
    State,
    /// Its default state; the running version's state is written to a file in the first
    /// of these directories where that works.
    Fresh(&'a [PathBuf]),
}

/// A saved state for a module that loads (from its snapshot), and the rules for it.
#[derive(Debug)]
pub(crate) struct SavedState {
    /// The state, self-describing.
    pub(crate) bytes: Vec<u8>,
    /// The version of the module that saved it (0: unknown).
    pub(crate) version: u32,
    /// What the engine lets the restore change.
    pub(crate) policy: StatePolicy,
}

/// What became of a saved state handed to a module that loads.
#[derive(Debug, Default)]
pub(crate) struct Restore {
    /// Why it was not used (the module then starts from its default).
    pub(crate) error: Option<Error>,
    /// What became of its fields, when it was used; `None` also for a module built before
    /// field reports existed.
    pub(crate) fields: Option<FieldReport>,
}

/// Hands `instance` the config `given` in `mode`; `None` when the module takes no config
/// (and none but the defaults was asked for).
fn configure(
    instance: &mut Instance,
    given: &GivenConfig,
    mode: u32,
) -> Result<Option<ConfigApplied>> {
    let (mode, bytes) = given.wire(mode);
    let outcome = instance.configure(&bytes, mode);
    given.settle(instance.name(), outcome)
}

/// A module loaded from a library file.
#[derive(Debug)]
pub struct LoadedModule {
    /// Declared first: destroyed (and its library closed) before the staging area goes.
    instance: Instance,
    generation: u64,
    fault: Option<String>,
    staging: Arc<Staging>,
    /// The config in force, every field; `None` when the module takes no config.
    config: Option<Value>,
    /// What a new version may do to the state it takes over.
    policy: StatePolicy,
}

/// A successful reload.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Reloaded {
    /// The module.
    pub module: String,
    /// The generation now running (the first load is 1).
    pub generation: u64,
    /// From the start of staging to the new version ready to run.
    pub took: Duration,
    /// Size of the state carried over, in bytes.
    pub state_bytes: usize,
    /// How the state was carried over.
    pub format: StateFormat,
    /// Whether the old library left memory.
    pub old_library: Unmapped,
    /// Config fields the new version could not take (its config type changed): each
    /// keeps its default, and says why. Also logged as a warning.
    pub config_dropped: Vec<ConfigIssue>,
    /// What became of the state's fields (added, removed, probably renamed, lossy), as the
    /// new version reported it; also logged. `None` when the new version was built with an
    /// older grove-sdk, which does not report, or started fresh.
    pub fields: Option<FieldReport>,
    /// Set when the new version started from its default state on purpose
    /// ([`Engine::reload_fresh`](crate::Engine::reload_fresh)): the file the old state was
    /// written to.
    pub old_state: Option<PathBuf>,
}

impl Reloaded {
    /// What became of the state, in a few words: the field report, or why there is none.
    pub fn state_summary(&self) -> String {
        match (&self.old_state, &self.fields) {
            (Some(file), _) => format!(
                "started from its default state; the old state was written to {}",
                file.display()
            ),
            (None, Some(report)) => report.to_string(),
            (None, None) => {
                "no field report from this module (built with an older grove-sdk)".to_owned()
            }
        }
    }
}

impl LoadedModule {
    /// Loads the module library at `path` and runs its `init`, staging its copy in the
    /// process's shared staging area.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_in(path.as_ref(), &Staging::shared()?, &FrameInfo::default())
    }

    /// Loads the module library at `path`, staging it in `staging`, and runs its `init`
    /// with `frame`.
    pub fn load_in(path: &Path, staging: &Arc<Staging>, frame: &FrameInfo) -> Result<Self> {
        Self::load_admitted(
            path,
            staging,
            frame,
            &admit_any,
            &|_| {},
            &|_| Ok(GivenConfig::defaults()),
            &|_| None,
        )
        .map(|(module, _)| module)
    }

    /// As [`LoadedModule::load_in`], if `admit` admits the library's header: asked before
    /// any of the library's code runs. `watch` is handed the module's call marker before
    /// its first call (the engine's watchdog watches `create` and `init` too). `config`
    /// gives the config for the module of that name, handed over before `init` if the
    /// module takes one; `state` a saved state (self-describing) to start from instead of
    /// the default. What became of the saved state is returned with the module: its field
    /// report, or why it was not used (the module then starts from its default).
    pub(crate) fn load_admitted(
        path: &Path,
        staging: &Arc<Staging>,
        frame: &FrameInfo,
        admit: Admit<'_>,
        watch: &dyn Fn(&Arc<ModuleCalls>),
        config: &dyn Fn(&str) -> Result<GivenConfig>,
        state: &dyn Fn(&str) -> Option<SavedState>,
    ) -> Result<(Self, Restore)> {
        crate::ffi::crash::install();
        let library = Library::load(path, staging, admit)?;
        let calls = ModuleCalls::new(library.name());
        watch(&calls);
        let mut instance = Instance::create(library, calls)?;
        let mut restore = Restore::default();
        if let Some(saved) = state(instance.name()) {
            let restored = instance
                .restore_state(StateFormat::SelfDescribing, &saved.bytes, saved.version)
                .and_then(|fields| {
                    let header = instance.library().header();
                    // The saved state's type is not known here: only that it shares no
                    // field with this one's.
                    saved
                        .policy
                        .check(
                            instance.name(),
                            "(the saved state's)",
                            &header.type_name,
                            fields.as_ref(),
                        )
                        .map(|()| fields)
                });
            match restored {
                Ok(fields) => restore.fields = fields,
                Err(error) => {
                    // The value may have taken the state before the policy refused it:
                    // start again from a new one.
                    if matches!(
                        error,
                        Error::LossyState { .. } | Error::UnrelatedState { .. }
                    ) {
                        let (library, calls) =
                            (instance.shared_library(), Arc::clone(instance.calls()));
                        drop(instance);
                        instance = Instance::create_shared(library, calls)?;
                    }
                    restore.error = Some(error);
                }
            }
        }
        let given = config(instance.name())?;
        let config = configure(&mut instance, &given, CONFIG_STRICT)?.map(|applied| applied.config);
        instance.init(frame)?;
        tracing::info!(module = %instance.name(), path = %path.display(), "module loaded");
        let module = Self {
            instance,
            generation: 1,
            fault: None,
            staging: Arc::clone(staging),
            config,
            policy: StatePolicy::default(),
        };
        Ok((module, restore))
    }

    /// What a new version may do to the state it takes over (the engine's policy).
    pub fn set_state_policy(&mut self, policy: StatePolicy) {
        self.policy = policy;
    }

    /// What a new version may do to the state it takes over.
    pub fn state_policy(&self) -> StatePolicy {
        self.policy
    }

    /// The config in force, every field included; `None` when the module takes no config.
    pub fn config(&self) -> Option<&Value> {
        self.config.as_ref()
    }

    /// Hands the module a new config, whole (fields not given take their default), between
    /// two frames. Refused (the config in force unchanged) for an unknown field, a value of
    /// the wrong type, or when the module's `configure` refuses it or panics.
    pub fn configure(&mut self, config: Value) -> Result<()> {
        self.apply_config(&GivenConfig::new(config, ConfigOrigin::Code))
    }

    /// A faulted module takes a config too: it is the config in force the next version
    /// is handed, so a config that made the module panic can be fixed before reloading.
    pub(crate) fn apply_config(&mut self, given: &GivenConfig) -> Result<()> {
        match configure(&mut self.instance, given, CONFIG_STRICT)? {
            Some(applied) => {
                self.config = Some(applied.config);
                Ok(())
            }
            None => Err(Error::NoConfig {
                module: self.name().to_owned(),
            }),
        }
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        self.instance.name()
    }

    /// How many versions have run: 1 after the first load, +1 per reload.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The library file the running version was loaded from.
    pub fn path(&self) -> &Path {
        self.instance.library().source()
    }

    /// What the running version's header says.
    pub fn header(&self) -> &HeaderInfo {
        self.instance.library().header()
    }

    /// A hash of the running version's library file.
    pub fn content_hash(&self) -> u64 {
        self.instance.library().content_hash()
    }

    /// The fingerprint of the running version's state schema.
    pub fn schema_fingerprint(&self) -> u64 {
        self.instance.schema_fingerprint()
    }

    /// The panic that stopped this version, if one did. A faulted module is not run again
    /// until a reload replaces it; its state is kept for that reload.
    pub fn fault(&self) -> Option<&str> {
        self.fault.as_deref()
    }

    /// Runs one frame. A panic is contained: the module is marked faulted and the panic
    /// returned; later calls return [`Error::Faulted`] until a reload.
    pub fn process(&mut self, frame: &FrameInfo) -> Result<()> {
        if let Some(message) = &self.fault {
            return Err(Error::Faulted {
                module: self.name().to_owned(),
                message: message.clone(),
            });
        }
        let result = self.instance.process(frame);
        if let Err(Error::Panicked { message, .. }) = &result {
            self.fault = Some(message.clone());
        }
        result
    }

    /// Runs `Module::shutdown`, then destroys the value and closes the library.
    pub fn shutdown(self, frame: &FrameInfo) -> Result<()> {
        self.unload(frame).0
    }

    /// Runs `Module::shutdown`, destroys the value and closes the library; says how the
    /// library left memory.
    pub fn unload(mut self, frame: &FrameInfo) -> (Result<()>, Unmapped) {
        let result = self.instance.shutdown(frame);
        let (destroyed, unmapped) = self.instance.retire();
        (result.and(destroyed), unmapped)
    }

    /// The module's health report; `None` when it is faulted (not called again until a
    /// reload) or its library was built before the hook existed. A panic in the hook is
    /// returned, and does not fault the module.
    pub fn health(&mut self) -> Result<Option<grove::Health>> {
        if self.fault.is_some() {
            return Ok(None);
        }
        self.instance.health()
    }

    /// The state, encoded by field name: a snapshot for saving or inspecting.
    pub fn save_state(&mut self) -> Result<Vec<u8>> {
        self.instance.save_state(StateFormat::SelfDescribing)
    }

    /// Replaces the state with `state`, encoded by field name (as [`LoadedModule::save_state`]
    /// writes it). On error the module keeps the state it had.
    pub fn load_state(&mut self, state: &[u8]) -> Result<()> {
        self.instance.load_state(StateFormat::SelfDescribing, state)
    }

    /// Replaces the running version with the library at `path`, carrying the state over.
    /// On error the running version and its state are untouched.
    pub fn reload(&mut self, path: &Path, frame: &FrameInfo) -> Result<Reloaded> {
        self.reload_from(path, None, frame, Carry::State)
    }

    /// Replaces the running version with the library at `path`, started from its default
    /// state on purpose: the running version's state is written to a file first, in the
    /// first of `dirs` where that works (its path is in [`Reloaded::old_state`]). For a
    /// state the new version refuses. On error (the file could not be written included) the
    /// running version and its state are untouched.
    pub fn reload_fresh(
        &mut self,
        path: &Path,
        frame: &FrameInfo,
        dirs: &[PathBuf],
    ) -> Result<Reloaded> {
        self.reload_from(path, None, frame, Carry::Fresh(dirs))
    }

    /// As [`LoadedModule::reload`], from a snapshot already read from `path` (by the
    /// watcher): its bytes and their hash; the new version starts from what `carry` says.
    pub(crate) fn reload_from(
        &mut self,
        path: &Path,
        snapshot: Option<Snapshot>,
        frame: &FrameInfo,
        carry: Carry<'_>,
    ) -> Result<Reloaded> {
        let started = Instant::now();
        let new = self
            .prepare(path, snapshot, frame, carry)
            .map_err(|source| Error::ReloadRefused {
                module: self.name().to_owned(),
                generation: self.generation,
                faulted: self.fault.is_some(),
                source: Box::new(source),
            })?;
        let took = started.elapsed();
        for dropped in &new.config_dropped {
            tracing::warn!(module = %self.name(), field = %dropped.field, "config field dropped by the new version: {}", dropped.message);
        }
        self.config = new.config;
        let old = std::mem::replace(&mut self.instance, new.instance);
        self.generation += 1;
        self.fault = None;
        let (destroyed, old_library) = old.retire();
        if let Err(e) = destroyed {
            tracing::warn!(module = %self.name(), error = %e, "dropping the old version failed");
        }
        let reloaded = Reloaded {
            module: self.name().to_owned(),
            generation: self.generation,
            took,
            state_bytes: new.state_bytes,
            format: new.format,
            old_library,
            config_dropped: new.config_dropped,
            fields: new.fields,
            old_state: new.old_state,
        };
        tracing::info!(
            module = %reloaded.module,
            generation = reloaded.generation,
            took_us = took.as_micros() as u64,
            state_bytes = reloaded.state_bytes,
            format = %reloaded.format,
            "module reloaded"
        );
        log_fields(&reloaded.module, reloaded.fields.as_ref(), reloaded.format);
        Ok(reloaded)
    }

    /// Saves the running version's state in `format` and restores it into `new`; returns
    /// its size and the new version's field report.
    fn move_state(
        &mut self,
        new: &mut Instance,
        format: StateFormat,
    ) -> Result<(usize, Option<FieldReport>)> {
        let state = self.instance.save_state(format)?;
        let from_version = self.header().state_version.unwrap_or(0);
        let fields = new.restore_state(format, &state, from_version)?;
        Ok((state.len(), fields))
    }

    /// Steps 2 and 3 of the transaction: a new version, created, restored (or started
    /// fresh) and initialised, ready to take over. `self` is only read (its state saved).
    fn prepare(
        &mut self,
        path: &Path,
        snapshot: Option<Snapshot>,
        frame: &FrameInfo,
        carry: Carry<'_>,
    ) -> Result<Prepared> {
        let running = self.header();
        // Checked from the file, before any of the new library's code runs. Another type
        // under the same name may take over if its state reads (the state policy decides
        // when it shares no field).
        let same_module = |new: &HeaderInfo| {
            if new.module_name == running.module_name {
                return Ok(());
            }
            Err(Error::WrongModule {
                path: path.to_owned(),
                expected: format!("{} ({})", running.module_name, running.type_name),
                found: format!("{} ({})", new.module_name, new.type_name),
            })
        };
        let library = match snapshot {
            Some(snapshot) => Library::load_snapshot(path, snapshot, &self.staging, &same_module)?,
            None => Library::load(path, &self.staging, &same_module)?,
        };
        let calls = std::sync::Arc::clone(self.instance.calls());
        let mut new = Instance::create(library, calls)?;
        let (format, state_bytes, fields) = match carry {
            Carry::State => self.carry_state(&mut new)?,
            Carry::Fresh(_) => (StateFormat::SelfDescribing, 0, None),
        };
        let (config, config_dropped) = self.config_for(&mut new)?;
        new.init(frame)?;
        // Last: a new version that fails to start writes no file.
        let old_state = match carry {
            Carry::Fresh(dirs) => {
                let state = self.instance.save_state(StateFormat::SelfDescribing)?;
                Some(crate::old_state::write(
                    self.name(),
                    self.generation,
                    &state,
                    dirs,
                )?)
            }
            Carry::State => None,
        };
        Ok(Prepared {
            instance: new,
            config,
            config_dropped,
            format,
            state_bytes,
            fields,
            old_state,
        })
    }

    /// Moves the running version's state into `new` and checks what became of it against
    /// the state policy: the format used, the state's size, the field report.
    fn carry_state(
        &mut self,
        new: &mut Instance,
    ) -> Result<(StateFormat, usize, Option<FieldReport>)> {
        let (old_version, new_version) = (
            self.header().state_version,
            new.library().header().state_version,
        );
        let format = match (old_version, new_version) {
            // A version bump means the author wants `migrate` to see the state, whatever
            // its shape.
            (Some(old), Some(new)) if old != new => StateFormat::SelfDescribing,
            _ => StateFormat::between(self.instance.schema_fingerprint(), new.schema_fingerprint()),
        };
        let moved = self.move_state(new, format);
        let (format, (state_bytes, fields)) = match moved {
            Ok(moved) => (format, moved),
            // Same fingerprint, yet the state would not go across positionally (a field
            // skipped conditionally, a type that needs a self-describing format): take the
            // slower, tolerant path before giving up. Panics are not retried.
            Err(Error::Failed {
                call: Call::SaveState | Call::LoadState,
                message,
                ..
            }) if format == StateFormat::Positional => {
                tracing::debug!(module = %self.name(), reason = %message, "positional state failed, retrying by field name");
                let format = StateFormat::SelfDescribing;
                (format, self.move_state(new, format)?)
            }
            Err(e) => return Err(e),
        };
        self.policy.check(
            self.name(),
            &self.header().type_name,
            &new.library().header().type_name,
            fields.as_ref(),
        )?;
        Ok((format, state_bytes, fields))
    }

    /// Hands the config in force to `new`, a new version whose config type may differ:
    /// fields it cannot take are dropped (they keep their default) and returned.
    fn config_for(&self, new: &mut Instance) -> Result<(Option<Value>, Vec<ConfigIssue>)> {
        let given = match &self.config {
            Some(config) => GivenConfig::new(config.clone(), ConfigOrigin::Reload),
            None => GivenConfig::defaults(),
        };
        match configure(new, &given, CONFIG_LENIENT)? {
            Some(applied) => Ok((Some(applied.config), applied.dropped)),
            None if self.config.is_some() => Ok((
                None,
                vec![ConfigIssue {
                    field: Default::default(),
                    message: "the new version takes no config: the config in force is dropped"
                        .to_owned(),
                }],
            )),
            None => Ok((None, Vec::new())),
        }
    }
}

/// Logs what a new version did to module `module`'s state: a warning for lossy values and
/// for a state that shares no field, a line for other changes, and says so when the module
/// gives no report.
pub(crate) fn log_fields(module: &str, fields: Option<&FieldReport>, format: StateFormat) {
    match fields {
        Some(report) if report.is_lossy() || report.unrelated => {
            tracing::warn!(module = %module, fields = %report, "state changed in translation");
        }
        Some(report) if !report.is_unchanged() => {
            tracing::info!(module = %module, fields = %report, "state fields changed");
        }
        Some(_) => {}
        None if format == StateFormat::SelfDescribing => {
            tracing::info!(module = %module, "no field report from this module (built with an older grove-sdk)");
        }
        None => {}
    }
}
