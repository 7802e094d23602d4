//! [`StaticModule`]: a module type linked into the host (its crate used as an rlib), run
//! through the same [`Module`] trait as a loaded one, with no C ABI, no copy of the state
//! and no serialisation. Meant for release builds, where nothing is reloaded.

use std::panic::{AssertUnwindSafe, catch_unwind};

use grove::abi::{ConfigApplied, ConfigIssue, FrameInfo};
use grove::{Configure, Context, Module};
use serde_json::Value;

use std::sync::Arc;

use crate::config::{ConfigOrigin, GivenConfig};
use crate::error::{Call, Error, Result};
use crate::ffi::calls::ModuleCalls;

/// A module linked into the host.
pub struct StaticModule {
    name: String,
    module: Box<dyn AnyLinked>,
    fault: Option<String>,
    calls: Arc<ModuleCalls>,
    /// The config in force; `None` when the module takes no config.
    config: Option<Value>,
}

/// How a module added with its config takes one: `grove::config::apply` for its type.
type ConfigureFn<M> = fn(&mut M, &Value, Option<&Value>) -> Result<ConfigApplied, ConfigIssue>;

/// A module value, and how it takes a config when it was added with one.
struct Linked<M> {
    module: M,
    configure: Option<ConfigureFn<M>>,
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
    pub fn new<M: Module>(name: impl Into<String>, module: M) -> Self {
        Self::boxed(
            name.into(),
            Box::new(Linked {
                module,
                configure: None,
            }),
        )
    }

    /// As [`StaticModule::new`], for a module that takes a config
    /// ([`StaticModule::configure`]).
    pub fn configured<M: Configure>(name: impl Into<String>, module: M) -> Self {
        Self::boxed(
            name.into(),
            Box::new(Linked {
                module,
                configure: Some(configure_as::<M>),
            }),
        )
    }

    fn boxed(name: String, module: Box<dyn AnyLinked>) -> Self {
        Self {
            calls: ModuleCalls::new(&name),
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
            linked.configure(&given.value, given.base.as_ref())
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
        catch_unwind(AssertUnwindSafe(|| f(module, &mut ctx))).map_err(|payload| {
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
        catch_unwind(AssertUnwindSafe(|| module.health())).map_err(|payload| Error::Panicked {
            module: self.name.clone(),
            path: None,
            call: Call::Health,
            message: crate::error::panic_message(&*payload),
        })
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
