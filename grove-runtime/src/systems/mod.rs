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
//! [`Threaded`] and [`Pool`] give their threads the main thread's stack size, not `std`'s
//! 2 MiB, so that a module may recurse as deep under them as under [`Sequential`] on the
//! main thread (see [`Strategy::default_stack_size`]).
//!
//! An engine has a default system, and each module may name another strategy when it is
//! added; the engine then runs each group under its system, all groups at the same time
//! (see [`ModuleSystem::run_frame_alongside`]).

mod pool;
mod sequential;
mod set;
mod stack;
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

    /// The stack size, in bytes, of the threads this system runs modules on, if it starts
    /// threads of its own; `None` (the default) if it runs them on the engine's thread or
    /// does not say. The built-in systems that start threads give them the main thread's
    /// stack size unless told otherwise ([`Strategy::default_stack_size`]).
    fn worker_stack_size(&self) -> Option<usize> {
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
    let _batch = crate::static_log::batch();
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
                HostedModule::new(Kind::Static(StaticModule::stateless(
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
    use crate::hosted::Kind;
    use crate::static_module::StaticModule;

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

    /// Stack frames of at least 4 KiB each, `depth` deep. The buffer escapes through
    /// `black_box` and is read after the call returns, so every level keeps its own frame:
    /// the compiler can neither drop the buffer nor turn the recursion into a loop.
    fn recurse(depth: usize) -> u64 {
        let mut buffer = [0u8; 4096];
        buffer[depth % 4096] = 1;
        let buffer = std::hint::black_box(&mut buffer);
        if depth == 0 {
            return u64::from(buffer[0]);
        }
        recurse(depth - 1) + u64::from(buffer[depth % 4096])
    }

    /// About 3 MiB deep: more than `std`'s 2 MiB thread stacks hold, well within the
    /// main thread's usual 8 MiB.
    const DEEP: usize = 768;

    /// Recurses [`DEEP`] levels every frame.
    struct Deep;

    impl grove::Module for Deep {
        fn process(&mut self, _: &mut grove::Context) {
            assert_eq!(recurse(DEEP), DEEP as u64 + 1);
        }
    }

    /// A module that recurses 3 MiB deep, fine on the main thread, is as fine under every
    /// system. With 2 MiB worker stacks it would overflow under `Threaded` and `Pool`, and
    /// a stack overflow aborts the test process: that is this test failing.
    #[test]
    fn a_module_may_recurse_as_deep_under_every_system_as_on_the_main_thread() {
        let stack = Strategy::default_stack_size();
        if stack < 4 << 20 {
            eprintln!("skipped: RLIMIT_STACK gives a {stack}-byte main thread, too small");
            return;
        }
        // Sequential runs modules on the caller, and libtest's threads have 2 MiB: the
        // frames run on a thread as big as the main thread, as an engine's would.
        let engine_thread = std::thread::Builder::new()
            .name("engine".to_owned())
            .stack_size(stack)
            .spawn(|| {
                for strategy in Strategy::ALL {
                    let mut modules: Vec<HostedModule> = (0..2)
                        .map(|i| {
                            HostedModule::new(Kind::Static(StaticModule::stateless(
                                format!("deep-{i}"),
                                Deep,
                            )))
                        })
                        .collect();
                    let mut system = strategy.system();
                    for n in 0..3 {
                        let mut refs: Vec<&mut HostedModule> = modules.iter_mut().collect();
                        let errors = system.run_frame(&mut refs, &frame(n));
                        assert!(errors.is_empty(), "{strategy}, frame {n}: {errors:?}");
                    }
                }
            })
            .expect("start the engine's thread");
        engine_thread
            .join()
            .expect("every system ran the deep module");
    }

    #[test]
    fn threaded_systems_default_to_the_main_thread_stack_and_take_another() {
        let main = Strategy::default_stack_size();
        assert!(main >= 2 << 20);
        assert_eq!(Strategy::Sequential.system().worker_stack_size(), None);
        assert_eq!(Strategy::Threaded.system().worker_stack_size(), Some(main));
        assert_eq!(Strategy::Pool.system().worker_stack_size(), Some(main));
        assert_eq!(Threaded::new().stack_size(), main);
        assert_eq!(Pool::with_threads(1).stack_size(), main);

        let size = 5 << 20;
        assert_eq!(Threaded::with_stack_size(size).stack_size(), size);
        let pool = Pool::with_threads_and_stack_size(2, size);
        assert_eq!((pool.threads(), pool.stack_size()), (2, size));
        for strategy in [Strategy::Threaded, Strategy::Pool] {
            let system = strategy.system_with_stack_size(size);
            assert_eq!(system.worker_stack_size(), Some(size), "{strategy}");
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
