//! [`HostedModule`]: a module as the engine holds it, static or loaded, with its timing and
//! what keeps it up to date (a file watcher, a crate builder).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use grove::abi::FrameInfo;
use grove::{Health, HealthStatus};

use crate::builder::BuildWatch;
use crate::bus::ModuleBus;
use crate::error::{Call, Error, Result};
use crate::ffi::library::Unmapped;
use crate::health::{HealthTrack, ModuleHealth};
use crate::loaded::LoadedModule;
use crate::static_module::StaticModule;
use crate::stats::{ModuleClock, ModuleTiming};
use crate::systems::Strategy;
use crate::watch::LibraryWatcher;

/// Static or loaded.
#[derive(Debug)]
pub(crate) enum Kind {
    Static(StaticModule),
    Loaded(Box<LoadedModule>),
}

/// A module in the engine. Module systems call [`HostedModule::process`] once per frame.
#[derive(Debug)]
pub struct HostedModule {
    id: u64,
    pub(crate) kind: Kind,
    /// The strategy it was added with; `None` runs it under the engine's own system.
    pub(crate) strategy: Option<Strategy>,
    pub(crate) clock: ModuleClock,
    pub(crate) watcher: Option<LibraryWatcher>,
    pub(crate) build: Option<BuildWatch>,
    /// A library its crate's build just made, waiting for its reload (when its file is
    /// not watched).
    pub(crate) built: Option<std::path::PathBuf>,
    /// The crate it is built from, for `Engine::watch_crate` modules.
    pub(crate) crate_dir: Option<std::path::PathBuf>,
    pub(crate) health: HealthTrack,
    /// Its end of the message bus: subscriptions and queue, kept across reloads.
    pub(crate) bus: ModuleBus,
}

impl HostedModule {
    /// A module with a new end of the bus.
    #[cfg(test)]
    pub(crate) fn new(kind: Kind) -> Self {
        Self::with_bus(kind, ModuleBus::new(""))
    }

    /// A module whose bus end was made (and lent to its first `init`) before it.
    pub(crate) fn with_bus(kind: Kind, mut bus: ModuleBus) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        match &kind {
            Kind::Static(m) => bus.rename(m.name()),
            Kind::Loaded(m) => bus.rename(m.name()),
        }
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            kind,
            strategy: None,
            clock: ModuleClock::default(),
            watcher: None,
            build: None,
            built: None,
            crate_dir: None,
            health: HealthTrack::default(),
            bus,
        }
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        match &self.kind {
            Kind::Static(m) => m.name(),
            Kind::Loaded(m) => m.name(),
        }
    }

    /// An identifier unique in the process, kept for as long as the module is in its engine
    /// (reloads included): what a module system keys per-module resources by (a
    /// [`Threaded`](crate::Threaded) system, the module's thread).
    pub fn id(&self) -> u64 {
        self.id
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
        let timed = self.clock.times(frame.frame, self.id);
        let started = timed.then(Instant::now);
        let (kind, bus) = (&mut self.kind, &mut self.bus);
        bus.begin_process();
        let result = crate::bus::lend(bus, || match kind {
            Kind::Static(m) => m.process(frame),
            Kind::Loaded(m) => m.process(frame),
        });
        bus.end_process(result.is_ok());
        match started {
            Some(started) => self.clock.record(started.elapsed()),
            None => self.clock.count(),
        }
        result
    }

    /// As [`HostedModule::process`], also containing a panic raised outside the module's
    /// own guard (in host code on the way): a module system's thread never unwinds because
    /// of a module. Such a panic is returned as [`Error::Panicked`]; the module is not
    /// faulted by it.
    pub fn process_contained(&mut self, frame: &FrameInfo) -> Result<()> {
        catch_unwind(AssertUnwindSafe(|| self.process(frame))).unwrap_or_else(|payload| {
            let message = crate::error::panic_message(&*payload);
            Err(Error::Panicked {
                module: self.name().to_owned(),
                path: self.path().map(ToOwned::to_owned),
                call: Call::Process,
                message,
            })
        })
    }

    /// The library the running version came from; `None` for a static module.
    fn path(&self) -> Option<&std::path::Path> {
        match &self.kind {
            Kind::Static(_) => None,
            Kind::Loaded(m) => Some(m.path()),
        }
    }

    /// Asks the module how it is doing (not a faulted one); returns the previous status
    /// when the status changed (`None` inside for a first report that is not healthy).
    pub(crate) fn poll_health(&mut self) -> Option<(Option<HealthStatus>, Health)> {
        self.health.polled = Some(Instant::now());
        let report = match &mut self.kind {
            Kind::Static(m) if m.fault().is_none() => m.health().map(Some),
            Kind::Static(_) => Ok(None),
            Kind::Loaded(m) => m.health(),
        };
        let report = match report {
            Ok(Some(report)) => report,
            Ok(None) => return None,
            // A hook that cannot say how the module is doing is a failure to report, not
            // good health.
            Err(error) => {
                self.health.last_error = Some(error.to_string());
                Health::failed(format!("its health hook failed: {error}"))
            }
        };
        let first = self.health.report.is_none();
        let before = self.health.record(report.clone())?;
        (!first || report.status() != HealthStatus::Healthy).then_some((before, report))
    }

    /// How it is doing, as last reported, with the engine's figures for it.
    pub(crate) fn health_entry(&self) -> ModuleHealth {
        let timing = self.timing();
        let micros = |d: std::time::Duration| d.as_secs_f64() * 1e6;
        let last_error = match &self.kind {
            Kind::Static(m) => m.fault(),
            Kind::Loaded(m) => m.fault(),
        };
        let status = if timing.faulted {
            HealthStatus::Failed
        } else {
            self.health
                .report
                .as_ref()
                .map_or(HealthStatus::Healthy, Health::status)
        };
        ModuleHealth {
            module: self.name().to_owned(),
            status,
            library: match &self.kind {
                Kind::Static(_) => None,
                Kind::Loaded(m) => Some(m.path().to_owned()),
            },
            generation: timing.generation,
            report: self.health.report.clone(),
            faulted: timing.faulted,
            last_error: last_error
                .map(|fault| format!("panicked: {fault}"))
                .or_else(|| self.health.last_error.clone()),
            frames: timing.frames,
            process_p50_us: micros(timing.process.p50),
            process_p99_us: micros(timing.process.p99),
            reloads: timing.reloads,
            refused_reloads: timing.refused_reloads,
            refused_configs: self.health.refused_configs,
            messages: crate::bus::module_stats(&self.bus),
        }
    }

    pub(crate) fn timing(&self) -> ModuleTiming {
        self.clock
            .timing(self.name(), self.generation(), self.is_faulted())
    }

    /// Its last timed `process`.
    pub(crate) fn last_process(&self) -> std::time::Duration {
        self.clock.last
    }

    /// Reloads a loaded module from `path` with its bus lent to the new version's `init`
    /// (whose subscriptions, if it makes any, become the module's set).
    pub(crate) fn reload(
        &mut self,
        path: &std::path::Path,
        snapshot: Option<crate::ffi::library::Snapshot>,
        frame: &FrameInfo,
        carry: crate::loaded::Carry<'_>,
    ) -> Option<Result<crate::loaded::Reloaded>> {
        let Kind::Loaded(module) = &mut self.kind else {
            return None;
        };
        let bus = &mut self.bus;
        bus.begin_init();
        let result = crate::bus::lend(bus, || module.reload_from(path, snapshot, frame, carry));
        bus.end_init(result.is_ok());
        Some(result)
    }

    /// The state, encoded by field name, static or loaded.
    pub(crate) fn save_state(&mut self) -> Result<Vec<u8>> {
        match &mut self.kind {
            Kind::Static(m) => m.save_state(),
            Kind::Loaded(m) => m.save_state(),
        }
    }

    /// Replaces the state with `state`, encoded by field name; on error the module keeps
    /// the state it had.
    pub(crate) fn load_state(&mut self, state: &[u8]) -> Result<()> {
        match &mut self.kind {
            Kind::Static(m) => m.load_state(state),
            Kind::Loaded(m) => m.load_state(state),
        }
    }

    pub(crate) fn loaded_mut(&mut self) -> Option<&mut LoadedModule> {
        match &mut self.kind {
            Kind::Loaded(m) => Some(m),
            Kind::Static(_) => None,
        }
    }

    /// Runs `Module::shutdown` and lets the module go: its library (how it left memory is
    /// returned), its watcher and its crate builder.
    pub(crate) fn shutdown(self, frame: &FrameInfo) -> (Result<()>, Option<Unmapped>) {
        let mut bus = self.bus;
        crate::bus::lend(&mut bus, || match self.kind {
            Kind::Static(m) => (m.shutdown(frame), None),
            Kind::Loaded(m) => {
                let (result, unmapped) = (*m).unload(frame);
                (result, Some(unmapped))
            }
        })
    }
}

// Module systems hand modules to other threads.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<HostedModule>();
};
