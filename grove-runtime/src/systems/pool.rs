//! [`Pool`]: modules as tasks on a fixed pool of threads, one per core.
//!
//! Built on a dedicated rayon `ThreadPool` rather than scoped threads: scoped threads would
//! start an OS thread per module every frame (tens of microseconds each, and as many threads
//! as modules), while the pool's threads live as long as the system, are as many as the
//! cores, and balance uneven modules by work stealing. A dedicated pool keeps the modules
//! off rayon's global pool, which the host may use for its own work.

use grove::abi::FrameInfo;
use rayon::prelude::*;
use tracing::Dispatch;

use super::{ModuleSystem, Strategy, run_here};
use crate::error::Error;
use crate::hosted::HostedModule;

/// Modules as tasks on a fixed pool of threads, one per core by default, with work
/// stealing: a thread that runs out of modules takes some from a busy one. Each frame every
/// module runs once, on whichever pool thread picks it up; the frame ends when all are done.
///
/// For many modules, or modules of uneven cost: the threads are bounded by the cores, so a
/// thousand modules cost no more threads than two. A module does not keep a thread from
/// frame to frame ([`Threaded`](super::Threaded) does). If the pool cannot be started, its
/// modules run on the engine's thread.
///
/// Each thread's stack is as big as the main thread's by default
/// ([`Strategy::default_stack_size`]: the `RLIMIT_STACK` soft limit, 8 MiB if unlimited),
/// not the 2 MiB rayon and `std` give, so that a module that recurses deep enough to work
/// under [`Sequential`](super::Sequential) on the main thread does not overflow its stack,
/// and abort the process, when it moves here. [`Pool::with_stack_size`] and
/// [`Pool::with_threads_and_stack_size`] set another size.
#[derive(Debug)]
pub struct Pool {
    pool: Option<rayon::ThreadPool>,
    threads: usize,
    /// Stack size of the threads, in bytes.
    stack_size: usize,
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Pool {
    /// A pool with a thread per core (`std::thread::available_parallelism`), each with the
    /// main thread's stack size ([`Strategy::default_stack_size`]).
    pub fn new() -> Self {
        Self::with_stack_size(Strategy::default_stack_size())
    }

    /// A pool of `threads` threads (at least one), each with the main thread's stack size
    /// ([`Strategy::default_stack_size`]).
    pub fn with_threads(threads: usize) -> Self {
        Self::with_threads_and_stack_size(threads, Strategy::default_stack_size())
    }

    /// A pool with a thread per core, each with a stack of `bytes` bytes.
    pub fn with_stack_size(bytes: usize) -> Self {
        Self::with_threads_and_stack_size(cores(), bytes)
    }

    /// A pool of `threads` threads (at least one), each with a stack of `bytes` bytes (the
    /// OS may round this up to its page size or its minimum).
    pub fn with_threads_and_stack_size(threads: usize, bytes: usize) -> Self {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .stack_size(bytes)
            .thread_name(|i| format!("grove pool {i}"))
            // Its threads run module code only inside a frame: not threads a retired
            // library could own.
            .start_handler(|_| crate::ffi::threads::register_host_thread())
            .exit_handler(|_| crate::ffi::threads::unregister_host_thread())
            .build();
        let pool = match pool {
            Ok(pool) => Some(pool),
            Err(error) => {
                tracing::warn!(threads, stack_size = bytes, error = %error, "cannot start the module pool; its modules run on the engine's thread");
                None
            }
        };
        Self {
            pool,
            threads,
            stack_size: bytes,
        }
    }

    /// How many threads the pool has.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The stack size, in bytes, of its threads.
    pub fn stack_size(&self) -> usize {
        self.stack_size
    }
}

/// The machine's cores (`std::thread::available_parallelism`), 1 if unknown.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl ModuleSystem for Pool {
    fn name(&self) -> &'static str {
        "pool"
    }

    fn strategy(&self) -> Option<Strategy> {
        Some(Strategy::Pool)
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
        let Some(pool) = &self.pool else {
            let errors = run_here(modules, frame);
            meanwhile();
            return errors;
        };
        if modules.is_empty() {
            meanwhile();
            return Vec::new();
        }
        // Module logs reach the caller's subscriber, scoped or global, from any thread.
        let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
        let mut errors = Vec::new();
        // The modules run on the pool while `meanwhile` runs here; the scope ends (and
        // `modules` is free again) only when every task is done, even if `meanwhile` panics.
        pool.in_place_scope(|scope| {
            scope.spawn(|_| {
                errors = modules
                    .par_iter_mut()
                    .enumerate()
                    // The subscriber is set once per piece of work a thread takes, not per
                    // module: setting it touches counters every pool thread shares.
                    .map_init(
                        || {
                            let subscriber = tracing::dispatcher::set_default(&dispatch);
                            // Dropped first: the batch puts back the subscriber it found.
                            (crate::static_log::batch(), subscriber)
                        },
                        |_, (index, module)| (index, module.process_contained(frame)),
                    )
                    .filter_map(|(index, result)| result.err().map(|e| (index, e)))
                    .collect();
            });
            meanwhile();
        });
        errors
    }
}
