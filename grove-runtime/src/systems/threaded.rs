//! [`Threaded`]: a thread of its own for each module, all in lockstep.
//!
//! Each module has a worker thread for as long as it is in the system, reloads included,
//! so its thread-locals stay put. Every frame the system lends each module to its worker,
//! and the frame ends when every worker has handed its module back. Lending is the one
//! `unsafe` thing here: a worker gets a pointer to a module the frame borrows, and
//! [`Lending`] (a guard that waits for every worker, also when the frame unwinds) makes
//! sure no worker can still hold it once the borrow ends.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use grove::abi::FrameInfo;
use tracing::Dispatch;

use super::{ModuleSystem, Strategy};
use crate::error::{Call, Error, Result};
use crate::hosted::HostedModule;

/// A thread per module, all in lockstep: each frame every module runs once on its own
/// thread, and the frame ends when the last one is done.
///
/// For a few modules that each do real work (up to one per core): they run in parallel and
/// keep their threads. With more modules than cores, every frame pays a context switch per
/// module; [`Pool`](super::Pool) suits that case. Threads are started when a module first
/// runs, ended when it leaves the system, and joined when the system is dropped. A module
/// whose thread cannot be started runs on the engine's thread instead.
///
/// Each thread's stack is as big as the main thread's by default
/// ([`Strategy::default_stack_size`]: the `RLIMIT_STACK` soft limit, 8 MiB if unlimited),
/// not `std`'s 2 MiB, so that a module that recurses deep enough to work under
/// [`Sequential`](super::Sequential) on the main thread does not overflow its stack, and
/// abort the process, when it moves here. [`Threaded::with_stack_size`] sets another size.
#[derive(Debug)]
pub struct Threaded {
    /// By module id.
    seats: HashMap<u64, Seat>,
    /// Frames run, to tell which modules have left.
    frames: u64,
    /// Stack size of the threads, in bytes.
    stack_size: usize,
}

impl Default for Threaded {
    fn default() -> Self {
        Self::new()
    }
}

/// A module's place in the system.
#[derive(Debug)]
struct Seat {
    /// The last frame the module was in.
    seen: u64,
    /// Its thread; `None` if it could not be started (the module runs on the caller's).
    worker: Option<Worker>,
}

impl Threaded {
    /// A system with no threads yet, whose threads will get the main thread's stack size
    /// ([`Strategy::default_stack_size`]).
    pub fn new() -> Self {
        Self::with_stack_size(Strategy::default_stack_size())
    }

    /// A system with no threads yet, whose threads will get stacks of `bytes` bytes (the
    /// OS may round this up to its page size or its minimum).
    pub fn with_stack_size(bytes: usize) -> Self {
        Self {
            seats: HashMap::new(),
            frames: 0,
            stack_size: bytes,
        }
    }

    /// The stack size, in bytes, its threads are started with.
    pub fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// How many module threads are running.
    pub fn threads(&self) -> usize {
        self.seats.values().filter(|s| s.worker.is_some()).count()
    }

    /// Gives every module a seat (a thread, started the first time), and ends the threads
    /// of modules that left or whose thread ended.
    fn seat(&mut self, modules: &[&mut HostedModule]) {
        self.frames += 1;
        let frame = self.frames;
        for module in modules {
            let id = module.id();
            if let Some(seat) = self.seats.get_mut(&id) {
                if seat.worker.as_ref().is_some_and(Worker::has_ended) {
                    tracing::warn!(module = %module.name(), "module thread ended; starting another");
                    seat.worker = None;
                    seat.worker = Worker::start(module.name(), self.stack_size);
                }
                seat.seen = frame;
                continue;
            }
            let worker = Worker::start(module.name(), self.stack_size);
            self.seats.insert(
                id,
                Seat {
                    seen: frame,
                    worker,
                },
            );
        }
        // Dropping a seat's worker ends and joins its thread.
        self.seats.retain(|_, seat| seat.seen == frame);
    }
}

impl ModuleSystem for Threaded {
    fn name(&self) -> &'static str {
        "threaded"
    }

    fn strategy(&self) -> Option<Strategy> {
        Some(Strategy::Threaded)
    }

    fn worker_stack_size(&self) -> Option<usize> {
        Some(self.stack_size)
    }

    fn run_frame(
        &mut self,
        modules: &mut [&mut HostedModule],
        frame: &FrameInfo,
    ) -> Vec<(usize, Error)> {
        self.run_frame_alongside(modules, frame, &mut || {})
    }

    fn run_frame_alongside(
        &mut self,
        modules: &mut [&mut HostedModule],
        frame: &FrameInfo,
        meanwhile: &mut dyn FnMut(),
    ) -> Vec<(usize, Error)> {
        self.seat(modules);
        // Module logs reach the caller's subscriber, scoped or global, from any thread.
        let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
        let mut lending = Lending::new();
        let mut here = Vec::new();
        for (index, module) in modules.iter_mut().enumerate() {
            let module: &mut HostedModule = module;
            match self.seats.get(&module.id()).and_then(|s| s.worker.as_ref()) {
                Some(worker) => {
                    if let Err(module) = lending.lend(index, worker, module, frame, &dispatch) {
                        here.push((index, module));
                    }
                }
                None => here.push((index, module)),
            }
        }
        meanwhile();
        let batch = crate::static_log::batch();
        let mut errors: Vec<(usize, Error)> = here
            .into_iter()
            .filter_map(|(index, m)| m.process_contained(frame).err().map(|e| (index, e)))
            .collect();
        drop(batch);
        errors.extend(lending.wait_all());
        errors.sort_by_key(|(index, _)| *index);
        errors
    }
}

impl Drop for Threaded {
    fn drop(&mut self) {
        // Tell every thread to end before joining any, so they wind down together.
        for seat in self.seats.values_mut() {
            if let Some(worker) = &mut seat.worker {
                worker.jobs = None;
            }
        }
    }
}

/// A module's thread, and the channels that lend it the module and hand it back.
#[derive(Debug)]
struct Worker {
    module: String,
    /// `None` once the thread is told to end.
    jobs: Option<Sender<Job>>,
    done: Receiver<Result<()>>,
    thread: Option<JoinHandle<()>>,
}

/// One frame's work for a worker.
struct Job {
    module: Lent,
    frame: FrameInfo,
    dispatch: Dispatch,
}

/// A module lent to a worker for one frame.
struct Lent(NonNull<HostedModule>);

// SAFETY: `HostedModule` is `Send` (asserted next to it), so using it from the worker's
// thread is allowed; a `Lent` is only made by `Lending::lend` from a `&mut HostedModule`
// that stays borrowed until the worker has handed it back, so one thread at a time uses it.
unsafe impl Send for Lent {}

impl Worker {
    /// Starts the thread for `module`, with a stack of `stack_size` bytes; `None` (logged)
    /// if the OS refuses.
    fn start(module: &str, stack_size: usize) -> Option<Self> {
        let (jobs, their_jobs) = channel();
        let (their_done, done) = channel();
        let spawned = std::thread::Builder::new()
            .name(format!("grove {module}"))
            .stack_size(stack_size)
            .spawn(move || work(their_jobs, their_done));
        match spawned {
            Ok(thread) => Some(Self {
                module: module.to_owned(),
                jobs: Some(jobs),
                done,
                thread: Some(thread),
            }),
            Err(error) => {
                tracing::warn!(module = %module, stack_size, error = %error, "cannot start a thread for the module; it runs on the engine's thread");
                None
            }
        }
    }

    fn has_ended(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits until the worker hands its module back, with the frame's result.
    fn wait(&self) -> Result<()> {
        self.done.recv().unwrap_or_else(|_| {
            // Its end of the channel went with the thread: it no longer holds the module.
            Err(Error::Panicked {
                module: self.module.clone(),
                path: None,
                call: Call::Process,
                message: "the module's thread ended during the frame".to_owned(),
            })
        })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(module = %self.module, "module thread panicked");
        }
    }
}

/// A worker's loop: run each lent module, hand it back, until told to end.
fn work(jobs: Receiver<Job>, done: Sender<Result<()>>) {
    // Runs module code only inside a frame: not a thread a retired library could own.
    let _worker = crate::ffi::threads::HostThread::register();
    for job in jobs {
        let result = {
            // SAFETY: `job.module` comes from a `&mut HostedModule` that `Lending` keeps
            // borrowed, and so unused by anyone else, until this thread's answer arrives (or
            // this thread ends). The reference lives in this block only, before the answer.
            let module = unsafe { &mut *job.module.0.as_ptr() };
            tracing::dispatcher::with_default(&job.dispatch, || {
                module.process_contained(&job.frame)
            })
        };
        if done.send(result).is_err() {
            return;
        }
    }
}

/// The modules lent to workers for one frame, borrowed for `'a`. A module comes back when
/// its worker answers (or its thread ends); dropping the guard waits for every module still
/// out, so even if the frame unwinds no worker holds a module after the borrow ends.
struct Lending<'a> {
    out: Vec<(usize, &'a Worker)>,
    _modules: PhantomData<&'a mut HostedModule>,
}

impl<'a> Lending<'a> {
    fn new() -> Self {
        Self {
            out: Vec::new(),
            _modules: PhantomData,
        }
    }

    /// Lends `module` (number `index` in the frame) to `worker` for `frame`; gives it back
    /// if the worker's thread is gone.
    fn lend(
        &mut self,
        index: usize,
        worker: &'a Worker,
        module: &'a mut HostedModule,
        frame: &FrameInfo,
        dispatch: &Dispatch,
    ) -> Result<(), &'a mut HostedModule> {
        let Some(jobs) = &worker.jobs else {
            return Err(module);
        };
        let job = Job {
            module: Lent(NonNull::from(&mut *module)),
            frame: *frame,
            dispatch: dispatch.clone(),
        };
        match jobs.send(job) {
            Ok(()) => {
                self.out.push((index, worker));
                Ok(())
            }
            // Not delivered: the pointer was never seen by the worker.
            Err(_) => Err(module),
        }
    }

    /// Waits for every module to come back; the frame's errors by index.
    fn wait_all(mut self) -> Vec<(usize, Error)> {
        self.out
            .drain(..)
            .filter_map(|(index, worker)| worker.wait().err().map(|e| (index, e)))
            .collect()
    }
}

impl Drop for Lending<'_> {
    fn drop(&mut self) {
        for (_, worker) in self.out.drain(..) {
            let _ = worker.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::hosted::Kind;
    use crate::static_module::StaticModule;
    use crate::systems::testing::{Log, frame, probes};

    fn run(system: &mut Threaded, modules: &mut [HostedModule], n: u64) -> Vec<(usize, Error)> {
        let mut refs: Vec<&mut HostedModule> = modules.iter_mut().collect();
        system.run_frame(&mut refs, &frame(n))
    }

    #[test]
    fn each_module_keeps_a_thread_of_its_own() {
        let log = Log::default();
        let mut modules = probes(3, &log, None);
        let mut system = Threaded::new();
        for n in 0..5 {
            assert!(run(&mut system, &mut modules, n).is_empty());
        }
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 15);
        let threads: Vec<HashSet<_>> = (0..3)
            .map(|m| log.iter().filter(|e| e.0 == m).map(|e| e.2).collect())
            .collect();
        assert!(threads.iter().all(|t| t.len() == 1), "{threads:?}");
        let all: HashSet<_> = threads.iter().flatten().collect();
        assert_eq!(all.len(), 3, "one thread per module");
        assert!(!all.contains(&std::thread::current().id()));
        assert_eq!(system.threads(), 3);
    }

    #[test]
    fn a_module_that_leaves_ends_its_thread_and_a_new_one_gets_one() {
        let log = Log::default();
        let mut modules = probes(3, &log, None);
        let mut system = Threaded::new();
        run(&mut system, &mut modules, 0);
        modules.remove(1);
        run(&mut system, &mut modules, 1);
        assert_eq!(system.threads(), 2);
        modules.extend(probes(1, &log, None));
        run(&mut system, &mut modules, 2);
        assert_eq!(system.threads(), 3);
        assert_eq!(log.lock().unwrap().len(), 3 + 2 + 3);
    }

    struct Slow(Log);

    impl grove::Module for Slow {
        fn process(&mut self, ctx: &mut grove::Context) {
            std::thread::sleep(Duration::from_millis(30));
            let me = std::thread::current().id();
            self.0.lock().unwrap().push((0, ctx.frame(), me));
        }
    }

    /// If the caller's own work panics while modules are lent out, the frame still waits for
    /// them before unwinding past the borrow: after the panic every module has finished.
    #[test]
    fn a_panic_alongside_still_waits_for_every_module() {
        for strategy in [Strategy::Threaded, Strategy::Pool] {
            let log = Log::default();
            let mut modules: Vec<HostedModule> = (0..3)
                .map(|i| {
                    HostedModule::new(Kind::Static(StaticModule::stateless(
                        format!("slow-{i}"),
                        Slow(Arc::clone(&log)),
                    )))
                })
                .collect();
            let mut system = strategy.system();
            let unwound = catch_unwind(AssertUnwindSafe(|| {
                let mut refs: Vec<&mut HostedModule> = modules.iter_mut().collect();
                system.run_frame_alongside(&mut refs, &frame(0), &mut || panic!("host panics"))
            }));
            assert!(unwound.is_err());
            assert_eq!(log.lock().unwrap().len(), 3, "{strategy}");
            // And the system still works.
            let mut refs: Vec<&mut HostedModule> = modules.iter_mut().collect();
            assert!(system.run_frame(&mut refs, &frame(1)).is_empty());
            assert_eq!(log.lock().unwrap().len(), 6, "{strategy}");
        }
    }
}
