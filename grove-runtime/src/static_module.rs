//! [`StaticModule`]: a module type linked into the host (its crate used as an rlib), run
//! through the same [`Module`] trait as a loaded one, with no C ABI, no copy of the state
//! and no serialisation on the frame path. Meant for release builds, where nothing is
//! reloaded. Its state can still be read and replaced by the host, through the same
//! self-describing encoding and checks as a loaded module's.

use std::panic::{AssertUnwindSafe, catch_unwind};

use grove::abi::{ConfigApplied, ConfigIssue, FrameInfo};
use grove::state::{self, StateError, StateFormat};
use grove::{Configure, Context, Module};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use std::sync::Arc;

use crate::config::{ConfigOrigin, GivenConfig};
use crate::error::{Call, Error, Result};
use crate::ffi::calls::ModuleCalls;
use crate::static_log::in_module;

/// A module linked into the host.
pub struct StaticModule {
    name: String,
    module: Box<dyn AnyLinked>,
    fault: Option<String>,
    calls: Arc<ModuleCalls>,
    /// The name its log events carry (see [`crate::static_log`]).
    log_name: &'static str,
    /// The config in force; `None` when the module takes no config.
    config: Option<Value>,
}

/// How a module added with its config takes one: `grove::config::apply` for its type.
type ConfigureFn<M> = fn(&mut M, &Value, Option<&Value>) -> Result<ConfigApplied, ConfigIssue>;

/// How a module added with its state type saves its state by field name, and decodes a
/// new one (the module's own `restore`, as in a loaded module's `load_state`).
struct StateFns<M> {
    save: fn(&M) -> Result<Vec<u8>, StateError>,
    restore: fn(&[u8]) -> Result<M, StateError>,
}

fn save_as<M: Serialize>(module: &M) -> Result<Vec<u8>, StateError> {
    state::save(module, StateFormat::SelfDescribing)
}

fn restore_as<M: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<M, StateError> {
    state::restore(bytes, StateFormat::SelfDescribing)
}

impl<M: Serialize + DeserializeOwned> StateFns<M> {
    fn of() -> Option<Self> {
        Some(Self {
            save: save_as::<M>,
            restore: restore_as::<M>,
        })
    }
}

/// A module value, how it takes a config when it was added with one, and how its state
/// is saved and replaced when it was added with its state type.
struct Linked<M> {
    module: M,
    configure: Option<ConfigureFn<M>>,
    state: Option<StateFns<M>>,
}

/// [`Linked`] with its type erased.
trait AnyLinked: Send {
    fn module(&mut self) -> &mut dyn Module;
    fn module_ref(&self) -> &dyn Module;
    /// `None` for a module added without its config.
    fn configure(
        &mut self,
        given: &Value,
        base: Option<&Value>,
    ) -> Option<Result<ConfigApplied, ConfigIssue>>;
    /// The state, by field name; `None` for a module added without its state type.
    fn save_state(&self) -> Option<Result<Vec<u8>, StateError>>;
    /// Replaces the state with `bytes` (by field name) when they decode; `None` for a
    /// module added without its state type.
    fn load_state(&mut self, bytes: &[u8]) -> Option<Result<(), StateError>>;
}

impl<M: Module> AnyLinked for Linked<M> {
    fn module(&mut self) -> &mut dyn Module {
        &mut self.module
    }
    fn module_ref(&self) -> &dyn Module {
        &self.module
    }
    fn configure(
        &mut self,
        given: &Value,
        base: Option<&Value>,
    ) -> Option<Result<ConfigApplied, ConfigIssue>> {
        self.configure
            .map(|configure| configure(&mut self.module, given, base))
    }
    fn save_state(&self) -> Option<Result<Vec<u8>, StateError>> {
        self.state.as_ref().map(|fns| (fns.save)(&self.module))
    }
    fn load_state(&mut self, bytes: &[u8]) -> Option<Result<(), StateError>> {
        let fns = self.state.as_ref()?;
        Some((fns.restore)(bytes).map(|module| self.module = module))
    }
}

fn configure_as<M: Configure>(
    module: &mut M,
    given: &Value,
    base: Option<&Value>,
) -> Result<ConfigApplied, ConfigIssue> {
    grove::config::apply(module, given, base, false)
}

impl std::fmt::Debug for StaticModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticModule")
            .field("name", &self.name)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

impl StaticModule {
    /// Wraps `module` under `name`. Its `init` runs on the first call to [`StaticModule::init`].
    /// Its state can be read and replaced ([`StaticModule::save_state`],
    /// [`StaticModule::load_state`]): every `#[grove::module]` type is serde.
    pub fn new<M: Module + Serialize + DeserializeOwned>(
        name: impl Into<String>,
        module: M,
    ) -> Self {
        Self::boxed(
            name.into(),
            Box::new(Linked {
                module,
                configure: None,
                state: StateFns::of(),
            }),
        )
    }

    /// As [`StaticModule::new`], for a module that takes a config
    /// ([`StaticModule::configure`]).
    pub fn configured<M: Configure + Serialize + DeserializeOwned>(
        name: impl Into<String>,
        module: M,
    ) -> Self {
        Self::boxed(
            name.into(),
            Box::new(Linked {
                module,
                configure: Some(configure_as::<M>),
                state: StateFns::of(),
            }),
        )
    }

    /// Wraps a module whose type is not serde (a host-side module holding handles, say):
    /// it runs as any other, but its state cannot be read or replaced
    /// ([`Error::NoState`]).
    pub fn stateless<M: Module>(name: impl Into<String>, module: M) -> Self {
        Self::boxed(
            name.into(),
            Box::new(Linked {
                module,
                configure: None,
                state: None,
            }),
        )
    }

    /// The state, encoded by field name (as [`LoadedModule::save_state`](crate::LoadedModule::save_state)
    /// encodes a loaded module's). A panic in the type's `Serialize` is returned, and does
    /// not fault the module.
    pub fn save_state(&mut self) -> Result<Vec<u8>> {
        let linked = &*self.module;
        let _call = self.calls.enter(Call::SaveState);
        let outcome = catch_unwind(AssertUnwindSafe(|| linked.save_state()))
            .map_err(|payload| self.panicked(Call::SaveState, &*payload))?;
        match outcome {
            None => Err(self.no_state()),
            Some(saved) => saved.map_err(|e| self.state_failed(Call::SaveState, e)),
        }
    }

    /// Replaces the state with `state`, encoded by field name, as
    /// [`LoadedModule::load_state`](crate::LoadedModule::load_state) does: fields `state`
    /// lacks take their default, and a state that does not decode (or a panic in the
    /// type's `Deserialize`) is an error naming the field, with the module's state
    /// unchanged.
    pub fn load_state(&mut self, state: &[u8]) -> Result<()> {
        let linked = &mut *self.module;
        let _call = self.calls.enter(Call::LoadState);
        let outcome = catch_unwind(AssertUnwindSafe(|| linked.load_state(state)))
            .map_err(|payload| self.panicked(Call::LoadState, &*payload))?;
        match outcome {
            None => Err(self.no_state()),
            Some(loaded) => loaded.map_err(|e| self.state_failed(Call::LoadState, e)),
        }
    }

    fn panicked(&self, call: Call, payload: &(dyn std::any::Any + Send)) -> Error {
        Error::Panicked {
            module: self.name.clone(),
            path: None,
            call,
            message: crate::error::panic_message(payload),
        }
    }

    fn no_state(&self) -> Error {
        Error::NoState {
            module: self.name.clone(),
        }
    }

    fn state_failed(&self, call: Call, error: StateError) -> Error {
        Error::StateFailed {
            module: self.name.clone(),
            call,
            message: error.to_string(),
        }
    }

    fn boxed(name: String, module: Box<dyn AnyLinked>) -> Self {
        Self {
            calls: ModuleCalls::new(&name),
            log_name: crate::static_log::log_name(&name),
            name,
            module,
            fault: None,
            config: None,
        }
    }

    /// The config in force, every field included; `None` when the module takes no config
    /// (or was added with [`StaticModule::new`]).
    pub fn config(&self) -> Option<&Value> {
        self.config.as_ref()
    }

    /// Hands the module a new config, whole (fields not given take their default), as
    /// [`LoadedModule::configure`](crate::LoadedModule::configure) does.
    pub fn configure(&mut self, config: Value) -> Result<()> {
        self.apply_config(&GivenConfig::new(config, ConfigOrigin::Code))
    }

    pub(crate) fn apply_config(&mut self, given: &GivenConfig) -> Result<()> {
        let linked = &mut *self.module;
        let _call = self.calls.enter(Call::Configure);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            in_module(self.log_name, || {
                linked.configure(&given.value, given.base.as_ref())
            })
        }))
        .unwrap_or_else(|payload| {
            Some(Err(ConfigIssue {
                field: Default::default(),
                message: format!(
                    "configure panicked: {}",
                    crate::error::panic_message(&*payload)
                ),
            }))
        });
        if let Some(applied) = given.settle(&self.name, outcome)? {
            self.config = Some(applied.config);
        }
        Ok(())
    }

    /// The marker of this module's calls.
    pub(crate) fn calls(&self) -> &Arc<ModuleCalls> {
        &self.calls
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The panic that stopped this module, if one did.
    pub fn fault(&self) -> Option<&str> {
        self.fault.as_deref()
    }

    fn call(
        &mut self,
        call: Call,
        frame: &FrameInfo,
        f: fn(&mut dyn Module, &mut Context),
    ) -> Result<()> {
        if let Some(message) = &self.fault {
            return Err(Error::Faulted {
                module: self.name.clone(),
                message: message.clone(),
            });
        }
        // SAFETY: the bus table is a static of the process.
        let mut ctx = unsafe { Context::with_host(*frame, crate::bus::static_host_api()) };
        let module = self.module.module();
        let _call = self.calls.enter(call);
        let log_name = self.log_name;
        catch_unwind(AssertUnwindSafe(|| {
            in_module(log_name, || f(module, &mut ctx))
        }))
        .map_err(|payload| {
            let message = crate::error::panic_message(&*payload);
            self.fault = Some(message.clone());
            Error::Panicked {
                module: self.name.clone(),
                path: None,
                call,
                message,
            }
        })
    }

    /// `Module::health`; a panic in it is returned, and does not fault the module.
    pub fn health(&mut self) -> Result<grove::Health> {
        let module = self.module.module_ref();
        let _call = self.calls.enter(Call::Health);
        let log_name = self.log_name;
        catch_unwind(AssertUnwindSafe(|| in_module(log_name, || module.health()))).map_err(
            |payload| Error::Panicked {
                module: self.name.clone(),
                path: None,
                call: Call::Health,
                message: crate::error::panic_message(&*payload),
            },
        )
    }

    /// Runs `Module::init`.
    pub fn init(&mut self, frame: &FrameInfo) -> Result<()> {
        self.call(Call::Init, frame, |m, ctx| m.init(ctx))
    }

    /// Runs one frame. A panic is contained and faults the module, as for a loaded one.
    pub fn process(&mut self, frame: &FrameInfo) -> Result<()> {
        self.call(Call::Process, frame, |m, ctx| m.process(ctx))
    }

    /// Runs `Module::shutdown`.
    pub fn shutdown(mut self, frame: &FrameInfo) -> Result<()> {
        self.fault = None;
        self.call(Call::Shutdown, frame, |m, ctx| m.shutdown(ctx))
    }
}
