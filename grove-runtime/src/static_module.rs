//! [`StaticModule`]: a module type linked into the host (its crate used as an rlib), run
//! through the same [`Module`] trait as a loaded one, with no C ABI, no copy of the state
//! and no serialisation. Meant for release builds, where nothing is reloaded.

use std::panic::{AssertUnwindSafe, catch_unwind};

use grove::abi::FrameInfo;
use grove::{Context, Module};

use std::sync::Arc;

use crate::error::{Call, Error, Result};
use crate::ffi::calls::ModuleCalls;

/// A module linked into the host.
pub struct StaticModule {
    name: String,
    module: Box<dyn Module>,
    fault: Option<String>,
    calls: Arc<ModuleCalls>,
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
        let name = name.into();
        Self {
            calls: ModuleCalls::new(&name),
            name,
            module: Box::new(module),
            fault: None,
        }
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
        let mut ctx = Context::from_frame(*frame);
        let module = &mut *self.module;
        let _call = self.calls.enter(call);
        catch_unwind(AssertUnwindSafe(|| f(module, &mut ctx))).map_err(|payload| {
            let message = crate::error::panic_message(&*payload);
            self.fault = Some(message.clone());
            Error::Panicked {
                module: self.name.clone(),
                path: "<static>".into(),
                call,
                message,
            }
        })
    }

    /// `Module::health`; a panic in it is returned, and does not fault the module.
    pub fn health(&mut self) -> Result<grove::Health> {
        let module = &*self.module;
        let _call = self.calls.enter(Call::Health);
        catch_unwind(AssertUnwindSafe(|| module.health())).map_err(|payload| Error::Panicked {
            module: self.name.clone(),
            path: "<static>".into(),
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
