//! [`HostedModule`]: a module as the engine holds it, static or loaded, with its timing and
//! what keeps it up to date (a file watcher, a crate builder).

use std::time::Instant;

use grove::abi::FrameInfo;

use crate::builder::BuildWatch;
use crate::error::{Error, Result};
use crate::loaded::LoadedModule;
use crate::static_module::StaticModule;
use crate::stats::{ModuleClock, ModuleTiming};
use crate::watcher::LibraryWatcher;

/// Static or loaded.
#[derive(Debug)]
pub(crate) enum Kind {
    Static(StaticModule),
    Loaded(Box<LoadedModule>),
}

/// A module in the engine. Module systems call [`HostedModule::process`] once per frame.
#[derive(Debug)]
pub struct HostedModule {
    pub(crate) kind: Kind,
    pub(crate) clock: ModuleClock,
    pub(crate) watcher: Option<LibraryWatcher>,
    pub(crate) build: Option<BuildWatch>,
    /// The crate it is built from, for `Engine::watch_crate` modules.
    pub(crate) crate_dir: Option<std::path::PathBuf>,
}

impl HostedModule {
    pub(crate) fn new(kind: Kind) -> Self {
        Self {
            kind,
            clock: ModuleClock::default(),
            watcher: None,
            build: None,
            crate_dir: None,
        }
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        match &self.kind {
            Kind::Static(m) => m.name(),
            Kind::Loaded(m) => m.name(),
        }
    }

    /// Whether a panic stopped it; a faulted module is skipped until a reload.
    pub fn is_faulted(&self) -> bool {
        match &self.kind {
            Kind::Static(m) => m.fault().is_some(),
            Kind::Loaded(m) => m.fault().is_some(),
        }
    }

    /// The generation running: 1 after the first load, +1 per reload; 0 for a static module.
    pub fn generation(&self) -> u64 {
        match &self.kind {
            Kind::Static(_) => 0,
            Kind::Loaded(m) => m.generation(),
        }
    }

    /// Runs the module for `frame`, timing it. A faulted module is skipped (`Ok`); a panic
    /// is returned once, the frame it happens in.
    pub fn process(&mut self, frame: &FrameInfo) -> Result<()> {
        if self.is_faulted() {
            return Ok(());
        }
        let started = Instant::now();
        let result = match &mut self.kind {
            Kind::Static(m) => m.process(frame),
            Kind::Loaded(m) => m.process(frame),
        };
        self.clock.record(started.elapsed());
        result
    }

    pub(crate) fn timing(&self) -> ModuleTiming {
        self.clock
            .timing(self.name(), self.generation(), self.is_faulted())
    }

    pub(crate) fn loaded_mut(&mut self) -> Option<&mut LoadedModule> {
        match &mut self.kind {
            Kind::Loaded(m) => Some(m),
            Kind::Static(_) => None,
        }
    }

    /// Runs `Module::shutdown` and lets the module go.
    pub(crate) fn shutdown(self, frame: &FrameInfo) -> Result<()> {
        match self.kind {
            Kind::Static(m) => m.shutdown(frame),
            Kind::Loaded(m) => (*m).shutdown(frame),
        }
    }
}

/// How the engine runs its modules each frame. Every module runs exactly once per frame,
/// and a frame ends when all are done; reloads happen between frames, never during one.
pub trait ModuleSystem: Send + std::fmt::Debug {
    /// A short name, for logs and stats.
    fn name(&self) -> &'static str;

    /// Runs every module once for `frame`. Returns the errors (panics) by module index.
    fn run_frame(&mut self, modules: &mut [HostedModule], frame: &FrameInfo)
    -> Vec<(usize, Error)>;
}

/// Modules one after another, in registration order, on the engine's thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sequential;

impl ModuleSystem for Sequential {
    fn name(&self) -> &'static str {
        "sequential"
    }

    fn run_frame(
        &mut self,
        modules: &mut [HostedModule],
        frame: &FrameInfo,
    ) -> Vec<(usize, Error)> {
        modules
            .iter_mut()
            .enumerate()
            .filter_map(|(i, m)| m.process(frame).err().map(|e| (i, e)))
            .collect()
    }
}
