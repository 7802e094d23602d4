//! Module systems: how the engine runs its modules each frame.
//!
//! Every system runs each module it is given exactly once per frame and returns only when
//! all of them are done, so the engine's reloads, which happen before a frame starts, never
//! meet a running module. Three come with grove, named by [`Strategy`]:
//!
//! - [`Sequential`]: one after another on the engine's thread (the default);
//! - [`Threaded`]: a thread of its own for each module, all in lockstep;
//! - [`Pool`]: tasks on a fixed pool of threads, one per core, with work stealing.
//!
//! An engine has a default system, and each module may name another strategy when it is
//! added; the engine then runs each group under its system, all groups at the same time
//! (see [`ModuleSystem::run_frame_alongside`]).

mod pool;
mod sequential;
mod set;
mod strategy;
mod threaded;

use grove::abi::FrameInfo;

use crate::error::Error;
use crate::hosted::HostedModule;

pub use pool::Pool;
pub use sequential::Sequential;
pub(crate) use set::Systems;
pub use strategy::Strategy;
pub use threaded::Threaded;

/// How the engine runs its modules each frame. Every module runs exactly once per frame,
/// and a frame ends when all are done; reloads happen between frames, never during one.
///
/// A panic in a module is contained by the module ([`HostedModule::process`] returns it
/// as an error, once); a system returns it with the module's index and carries on with the
/// others.
pub trait ModuleSystem: Send + std::fmt::Debug {
    /// A short name, for logs and stats.
    fn name(&self) -> &'static str;

    /// The built-in strategy this system is, if it is one. The engine runs a module added
    /// with that strategy under this system rather than a second one.
    fn strategy(&self) -> Option<Strategy> {
        None
    }

    /// Runs every module once for `frame`; returns when all are done. Returns the errors
    /// (panics) by index into `modules`.
    fn run_frame(
        &mut self,
        modules: &mut [&mut HostedModule],
        frame: &FrameInfo,
    ) -> Vec<(usize, Error)>;

    /// As [`ModuleSystem::run_frame`], also calling `meanwhile` once on the calling thread.
    /// A system whose modules run on other threads calls it while they run, so that the
    /// engine's other groups of modules (run by `meanwhile`) overlap with this one; it still
    /// returns only when its own modules are done, even if `meanwhile` panics. The default
    /// runs the modules, then `meanwhile`.
    fn run_frame_alongside(
        &mut self,
        modules: &mut [&mut HostedModule],
        frame: &FrameInfo,
        meanwhile: &mut dyn FnMut(),
    ) -> Vec<(usize, Error)> {
        let errors = self.run_frame(modules, frame);
        meanwhile();
        errors
    }
}

/// Runs `modules` one after another on this thread: [`Sequential`], and the fallback of
/// the others when they cannot get a thread.
fn run_here(modules: &mut [&mut HostedModule], frame: &FrameInfo) -> Vec<(usize, Error)> {
    modules
        .iter_mut()
        .enumerate()
        .filter_map(|(i, m)| m.process_contained(frame).err().map(|e| (i, e)))
        .collect()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Static modules that record where and when they ran.

    use std::sync::{Arc, Mutex};
    use std::thread::ThreadId;

    use grove::abi::FrameInfo;
    use grove::{Context, Module};

    use crate::hosted::{HostedModule, Kind};
    use crate::static_module::StaticModule;

    /// What a probe saw: (module, frame, thread) per `process`.
    pub(crate) type Log = Arc<Mutex<Vec<(usize, u64, ThreadId)>>>;

    /// Records each `process`; panics in frame `panic_at`.
    pub(crate) struct Probe {
        pub(crate) number: usize,
        pub(crate) log: Log,
        pub(crate) panic_at: Option<u64>,
    }

    impl Module for Probe {
        fn process(&mut self, ctx: &mut Context) {
            if self.panic_at == Some(ctx.frame()) {
                panic!("probe {} panics at frame {}", self.number, ctx.frame());
            }
            let thread = std::thread::current().id();
            self.log
                .lock()
                .unwrap()
                .push((self.number, ctx.frame(), thread));
        }
    }

    /// `n` probes sharing `log`; probe `panicking` panics at frame 1.
    pub(crate) fn probes(n: usize, log: &Log, panicking: Option<usize>) -> Vec<HostedModule> {
        (0..n)
            .map(|number| {
                let probe = Probe {
                    number,
                    log: Arc::clone(log),
                    panic_at: (panicking == Some(number)).then_some(1),
                };
                HostedModule::new(Kind::Static(StaticModule::new(
                    format!("probe-{number}"),
                    probe,
                )))
            })
            .collect()
    }

    pub(crate) fn frame(n: u64) -> FrameInfo {
        FrameInfo {
            frame: n,
            ..FrameInfo::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Log, frame, probes};
    use super::*;

    /// Every built-in system, three frames over five probes (number 2 panics in frame 1):
    /// each probe runs once per frame, and the panic comes back once, with its index.
    #[test]
    fn every_system_runs_each_module_once_per_frame_and_returns_panics_by_index() {
        for strategy in Strategy::ALL {
            let log = Log::default();
            let mut modules = probes(5, &log, Some(2));
            let mut system = strategy.system();
            for n in 0..3 {
                let mut refs: Vec<&mut HostedModule> = modules.iter_mut().collect();
                let errors = system.run_frame(&mut refs, &frame(n));
                let seen: Vec<usize> = errors.iter().map(|(i, _)| *i).collect();
                let expected: &[usize] = if n == 1 { &[2] } else { &[] };
                assert_eq!(seen, expected, "{strategy}, frame {n}");
                assert!(
                    errors
                        .iter()
                        .all(|(_, e)| matches!(e, Error::Panicked { .. }))
                );
                let mut ran: Vec<usize> = log
                    .lock()
                    .unwrap()
                    .drain(..)
                    .map(|(module, f, _)| {
                        assert_eq!(f, n, "{strategy}: a module ran in another frame");
                        module
                    })
                    .collect();
                ran.sort_unstable();
                let expected: Vec<usize> = (0..5).filter(|&m| n == 0 || m != 2).collect();
                assert_eq!(ran, expected, "{strategy}, frame {n}");
            }
            assert!(modules[2].is_faulted(), "{strategy}");
        }
    }

    #[test]
    fn meanwhile_runs_once_on_the_calling_thread() {
        for strategy in Strategy::ALL {
            let log = Log::default();
            let mut modules = probes(3, &log, None);
            let mut refs: Vec<&mut HostedModule> = modules.iter_mut().collect();
            let caller = std::thread::current().id();
            let mut calls = 0;
            let errors = strategy
                .system()
                .run_frame_alongside(&mut refs, &frame(0), &mut || {
                    assert_eq!(std::thread::current().id(), caller);
                    calls += 1;
                });
            assert!(errors.is_empty());
            assert_eq!(calls, 1, "{strategy}");
            assert_eq!(log.lock().unwrap().len(), 3, "{strategy}");
        }
    }
}
