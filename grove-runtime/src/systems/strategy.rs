//! [`Strategy`]: the built-in module systems by name, and which one to pick.

use std::fmt;

use super::{ModuleSystem, Pool, Sequential, Threaded, stack};

/// A built-in way of running modules, chosen per engine
/// ([`EngineBuilder::strategy`](crate::EngineBuilder::strategy)) or per module
/// ([`Engine::load_module_with`](crate::Engine::load_module_with)).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// One after another on the engine's thread: [`Sequential`].
    #[default]
    Sequential,
    /// A thread per module, all in lockstep: [`Threaded`].
    Threaded,
    /// Tasks on a pool of one thread per core, with work stealing: [`Pool`].
    Pool,
}

impl Strategy {
    /// Every strategy, in declaration order.
    pub const ALL: [Strategy; 3] = [Strategy::Sequential, Strategy::Threaded, Strategy::Pool];

    /// Its name, as its system reports it.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Sequential => "sequential",
            Strategy::Threaded => "threaded",
            Strategy::Pool => "pool",
        }
    }

    /// A new system of this strategy ([`Pool`] sized to the machine's cores), whose
    /// threads, if it has any, get the main thread's stack size
    /// ([`Strategy::default_stack_size`]).
    pub fn system(self) -> Box<dyn ModuleSystem> {
        self.system_with_stack_size(Self::default_stack_size())
    }

    /// As [`Strategy::system`], its threads (if it has any: not [`Sequential`]'s) getting
    /// stacks of `bytes` bytes.
    pub fn system_with_stack_size(self, bytes: usize) -> Box<dyn ModuleSystem> {
        match self {
            Strategy::Sequential => Box::new(Sequential),
            Strategy::Threaded => Box::new(Threaded::with_stack_size(bytes)),
            Strategy::Pool => Box::new(Pool::with_stack_size(bytes)),
        }
    }

    /// The stack size, in bytes, that [`Threaded`] and [`Pool`] give their threads unless
    /// told otherwise: the main thread's, which is the `RLIMIT_STACK` soft limit (8 MiB if
    /// it is unlimited or cannot be read, and never less than 2 MiB, `std`'s default for
    /// the threads it starts).
    ///
    /// Not `std`'s 2 MiB because a module is often written and tried under [`Sequential`]
    /// on the main thread: with smaller stacks, one that recurses deep enough would work
    /// there and abort the process (a stack overflow is not a panic, so it cannot be
    /// contained) once it runs on a thread of [`Threaded`] or [`Pool`]. A thread's stack is
    /// reserved address space; only the pages it touches take memory.
    pub fn default_stack_size() -> usize {
        stack::main_thread_stack_size()
    }

    /// A strategy for `modules` modules on `cores` cores at `fps` frames per second (0:
    /// unpaced), knowing nothing of what the modules cost:
    ///
    /// - one module, or one core: [`Sequential`](Strategy::Sequential); there is nothing to
    ///   overlap, and handing a module to another thread only adds its cost;
    /// - no more modules than cores, at up to [`Strategy::THREADED_MAX_FPS`]:
    ///   [`Threaded`](Strategy::Threaded); each module gets a core and keeps its thread;
    /// - otherwise [`Pool`](Strategy::Pool): a thread per module would outnumber the cores
    ///   (every frame then pays a context switch per module), and a pool's threads balance
    ///   uneven modules; an unpaced or very fast frame rate leaves too little time to wake
    ///   one sleeping thread per module each frame.
    ///
    /// `std::thread::available_parallelism` gives `cores`. BENCHMARKS.md has the figures
    /// behind these thresholds.
    pub fn recommend(modules: usize, cores: usize, fps: f64) -> Strategy {
        let fast = fps <= 0.0 || !fps.is_finite() || fps > Self::THREADED_MAX_FPS;
        if modules < 2 || cores < 2 {
            Strategy::Sequential
        } else if modules <= cores && !fast {
            Strategy::Threaded
        } else {
            Strategy::Pool
        }
    }

    /// The highest frame rate at which [`Strategy::recommend`] gives a thread per module.
    pub const THREADED_MAX_FPS: f64 = 240.0;
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_module_or_one_core_runs_in_sequence() {
        assert_eq!(Strategy::recommend(1, 8, 60.0), Strategy::Sequential);
        assert_eq!(Strategy::recommend(0, 8, 60.0), Strategy::Sequential);
        assert_eq!(Strategy::recommend(16, 1, 60.0), Strategy::Sequential);
    }

    #[test]
    fn few_modules_get_a_thread_each_many_share_a_pool() {
        assert_eq!(Strategy::recommend(2, 2, 60.0), Strategy::Threaded);
        assert_eq!(Strategy::recommend(8, 8, 144.0), Strategy::Threaded);
        assert_eq!(Strategy::recommend(3, 2, 60.0), Strategy::Pool);
        assert_eq!(Strategy::recommend(1000, 8, 60.0), Strategy::Pool);
    }

    #[test]
    fn unpaced_or_very_fast_frames_use_the_pool() {
        assert_eq!(Strategy::recommend(2, 4, 0.0), Strategy::Pool);
        assert_eq!(Strategy::recommend(2, 4, 1000.0), Strategy::Pool);
        assert_eq!(Strategy::recommend(2, 4, f64::NAN), Strategy::Pool);
    }

    #[test]
    fn all_is_in_declaration_order() {
        // `Systems` indexes a table by `strategy as usize`.
        for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
            assert_eq!(strategy as usize, i);
        }
    }

    #[test]
    fn every_strategy_builds_its_system() {
        for strategy in Strategy::ALL {
            let system = strategy.system();
            assert_eq!(system.name(), strategy.name());
            assert_eq!(system.strategy(), Some(strategy));
        }
    }
}
