//! [`LoadedModule`]: a module running from a library file, and the reload transaction that
//! replaces its code while keeping its state.
//!
//! The transaction never touches the running version until the new one has proven itself:
//! stage and open the new library, create its value, move the state across, run its `init`.
//! Any failure on the way drops the new version; the old one runs the next frame as if
//! nothing happened. Only then is the old value destroyed, its library closed and checked
//! to be unmapped, and its copy deleted.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grove::abi::{CONFIG_LENIENT, CONFIG_STRICT, ConfigApplied, ConfigIssue, FrameInfo};
use grove::state::StateFormat;
use serde_json::Value;

use crate::config::{ConfigOrigin, GivenConfig};
use crate::error::{Call, Error, Result};
use crate::ffi::calls::ModuleCalls;
use crate::ffi::instance::Instance;
use crate::ffi::library::{Admit, HeaderInfo, Library, Snapshot, Unmapped, admit_any};
use crate::ffi::staging::Staging;

/// A new version ready to take over: its instance, the config in force for it, and the
/// config fields it dropped.
type Prepared = (Instance, Option<Value>, Vec<ConfigIssue>);

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
    /// the default. A saved state that does not load is returned with the module, which
    /// then starts from its default.
    pub(crate) fn load_admitted(
        path: &Path,
        staging: &Arc<Staging>,
        frame: &FrameInfo,
        admit: Admit<'_>,
        watch: &dyn Fn(&Arc<ModuleCalls>),
        config: &dyn Fn(&str) -> Result<GivenConfig>,
        state: &dyn Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<(Self, Option<Error>)> {
        crate::ffi::crash::install();
        let library = Library::load(path, staging, admit)?;
        let calls = ModuleCalls::new(library.name());
        watch(&calls);
        let mut instance = Instance::create(library, calls)?;
        let restore_error = state(instance.name()).and_then(|state| {
            instance
                .load_state(StateFormat::SelfDescribing, &state)
                .err()
        });
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
        };
        Ok((module, restore_error))
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
        self.reload_from(path, None, frame)
    }

    /// As [`LoadedModule::reload`], from a snapshot already read from `path` (by the
    /// watcher): its bytes and their hash.
    pub(crate) fn reload_from(
        &mut self,
        path: &Path,
        snapshot: Option<Snapshot>,
        frame: &FrameInfo,
    ) -> Result<Reloaded> {
        let started = Instant::now();
        let (new, format, state_bytes) =
            self.prepare(path, snapshot, frame)
                .map_err(|source| Error::ReloadRefused {
                    module: self.name().to_owned(),
                    generation: self.generation,
                    faulted: self.fault.is_some(),
                    source: Box::new(source),
                })?;
        let took = started.elapsed();
        let (new, config, config_dropped) = new;
        for dropped in &config_dropped {
            tracing::warn!(module = %self.name(), field = %dropped.field, "config field dropped by the new version: {}", dropped.message);
        }
        self.config = config;
        let old = std::mem::replace(&mut self.instance, new);
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
            state_bytes,
            format,
            old_library,
            config_dropped,
        };
        tracing::info!(
            module = %reloaded.module,
            generation = reloaded.generation,
            took_us = took.as_micros() as u64,
            state_bytes,
            format = %format,
            "module reloaded"
        );
        Ok(reloaded)
    }

    /// Saves the running version's state in `format` and loads it into `new`; returns its
    /// size.
    fn move_state(&mut self, new: &mut Instance, format: StateFormat) -> Result<usize> {
        let state = self.instance.save_state(format)?;
        new.load_state(format, &state)?;
        Ok(state.len())
    }

    /// Steps 2 and 3 of the transaction: a new version, created, restored and initialised,
    /// ready to take over. `self` is only read (its state saved).
    fn prepare(
        &mut self,
        path: &Path,
        snapshot: Option<Snapshot>,
        frame: &FrameInfo,
    ) -> Result<(Prepared, StateFormat, usize)> {
        let running = self.header();
        // Checked from the file, before any of the new library's code runs.
        let same_module = |new: &HeaderInfo| {
            if new.module_name == running.module_name && new.type_name == running.type_name {
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
        let format =
            StateFormat::between(self.instance.schema_fingerprint(), new.schema_fingerprint());
        let moved = self.move_state(&mut new, format);
        let (format, state_bytes) = match moved {
            Ok(bytes) => (format, bytes),
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
                (format, self.move_state(&mut new, format)?)
            }
            Err(e) => return Err(e),
        };
        let (config, dropped) = self.config_for(&mut new)?;
        new.init(frame)?;
        Ok(((new, config, dropped), format, state_bytes))
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
