//! [`Systems`]: the engine's module systems, and which modules each one runs.
//!
//! Modules added without a strategy run under the engine's default system; a module added
//! with a strategy runs under the system of that strategy (the default one, if it is of that
//! strategy). Each frame every system gets its group of modules, and the groups run at the
//! same time: the systems whose modules run on other threads start them first, and the
//! ones that run modules on the engine's thread go while those run.

use grove::abi::FrameInfo;

use super::{ModuleSystem, Strategy};
use crate::error::Error;
use crate::hosted::HostedModule;

/// The engine's module systems: its default first, then one per other strategy its
/// modules asked for, created when the first of them is added.
#[derive(Debug)]
pub(crate) struct Systems {
    systems: Vec<Box<dyn ModuleSystem>>,
    /// Stack size, in bytes, of the threads of the systems created here.
    worker_stack_size: usize,
}

/// A system as the engine holds it.
type System = dyn ModuleSystem + 'static;

/// The modules one system runs in a frame, with their indices in the engine.
struct Group<'m> {
    indices: Vec<usize>,
    modules: Vec<&'m mut HostedModule>,
}

impl Systems {
    /// `default` first; the systems created later for other strategies give their threads
    /// stacks of `worker_stack_size` bytes.
    pub(crate) fn new(default: Box<dyn ModuleSystem>, worker_stack_size: usize) -> Self {
        Self {
            systems: vec![default],
            worker_stack_size,
        }
    }

    /// The default system.
    pub(crate) fn default_system(&self) -> &dyn ModuleSystem {
        &*self.systems[0]
    }

    /// Which system runs a module added with `strategy`, if it exists yet.
    fn find(&self, strategy: Option<Strategy>) -> Option<usize> {
        match strategy {
            None => Some(0),
            Some(strategy) => self
                .systems
                .iter()
                .position(|s| s.strategy() == Some(strategy)),
        }
    }

    /// Makes sure a system for `strategy` exists (a pool starts its threads here, not in
    /// the middle of a frame).
    pub(crate) fn prepare(&mut self, strategy: Option<Strategy>) {
        if let (Some(strategy), None) = (strategy, self.find(strategy)) {
            let stack_size = self.worker_stack_size;
            tracing::debug!(strategy = %strategy, stack_size, "starting a module system");
            self.systems
                .push(strategy.system_with_stack_size(stack_size));
        }
    }

    /// The name of the system that runs a module added with `strategy`.
    pub(crate) fn name_for(&self, strategy: Option<Strategy>) -> &'static str {
        match self.find(strategy) {
            Some(i) => self.systems[i].name(),
            None => strategy.unwrap_or_default().name(),
        }
    }

    /// Runs every module once, each under its system, the groups at the same time; returns
    /// when all are done, with the errors by index into `modules`.
    pub(crate) fn run_frame(
        &mut self,
        modules: &mut [HostedModule],
        frame: &FrameInfo,
    ) -> Vec<(usize, Error)> {
        if let [only] = self.systems.as_mut_slice() {
            // The usual case: one system, and every module in it, in order.
            let mut all: Vec<&mut HostedModule> = modules.iter_mut().collect();
            return only.run_frame(&mut all, frame);
        }
        let mut groups: Vec<Group<'_>> = self
            .systems
            .iter()
            .map(|_| Group {
                indices: Vec::new(),
                modules: Vec::new(),
            })
            .collect();
        // Which group each strategy's modules go to, looked up once per frame.
        let default = 0;
        let slot = |strategy| self.find(Some(strategy)).unwrap_or(default);
        let slots = Strategy::ALL.map(slot);
        for (index, module) in modules.iter_mut().enumerate() {
            let slot = match module.strategy {
                None => default,
                Some(strategy) => slots[strategy as usize],
            };
            let group = &mut groups[slot];
            group.indices.push(index);
            group.modules.push(module);
        }
        let mut running: Vec<(&mut System, Group<'_>)> = self
            .systems
            .iter_mut()
            .map(|s| &mut **s)
            .zip(groups)
            .collect();
        // Systems that run their modules elsewhere first (stable: the default keeps its
        // place among the others).
        running.sort_by_key(|(system, _)| !runs_elsewhere(&**system));
        let mut errors = Vec::new();
        run_nested(&mut running, frame, &mut errors);
        errors.sort_by_key(|(index, _)| *index);
        errors
    }
}

/// Whether a system runs its modules on threads other than the caller's.
fn runs_elsewhere(system: &dyn ModuleSystem) -> bool {
    matches!(system.strategy(), Some(Strategy::Threaded | Strategy::Pool))
}

/// Runs the first system's group, and the rest (recursively) alongside it.
fn run_nested(
    running: &mut [(&mut System, Group<'_>)],
    frame: &FrameInfo,
    errors: &mut Vec<(usize, Error)>,
) {
    let Some(((system, group), rest)) = running.split_first_mut() else {
        return;
    };
    let mut inner = Vec::new();
    let own = system.run_frame_alongside(&mut group.modules, frame, &mut || {
        run_nested(rest, frame, &mut inner)
    });
    errors.extend(own.into_iter().map(|(i, e)| (group.indices[i], e)));
    errors.extend(inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systems::Sequential;
    use crate::systems::testing::{Log, frame, probes};

    /// Six probes, two per strategy, interleaved; probe 4 (a pooled one) panics in frame 1
    /// and is skipped after.
    #[test]
    fn each_group_runs_under_its_system_and_errors_keep_engine_indices() {
        let log = Log::default();
        let mut modules = probes(6, &log, Some(4));
        let strategies = [None, Some(Strategy::Pool), Some(Strategy::Threaded)];
        let mut systems = Systems::new(Box::new(Sequential), Strategy::default_stack_size());
        for (i, module) in modules.iter_mut().enumerate() {
            module.strategy = strategies[i % 3];
            systems.prepare(module.strategy);
        }
        assert_eq!(systems.name_for(Some(Strategy::Sequential)), "sequential");
        assert_eq!(systems.name_for(Some(Strategy::Pool)), "pool");
        for n in 0..3 {
            let errors = systems.run_frame(&mut modules, &frame(n));
            let indices: Vec<usize> = errors.iter().map(|(i, _)| *i).collect();
            assert_eq!(indices, if n == 1 { vec![4] } else { vec![] });
        }
        let log = log.lock().unwrap();
        let caller = std::thread::current().id();
        for (module, _, thread) in log.iter() {
            assert_eq!(*thread == caller, module % 3 == 0, "probe {module}");
        }
        assert_eq!(log.len(), 6 * 3 - 2);
        assert_eq!(systems.systems.len(), 3, "one system per strategy");
    }

    /// The systems made for modules' strategies get the engine's worker stack size.
    #[test]
    fn systems_made_for_strategies_get_the_worker_stack_size() {
        let size = 3 << 20;
        let mut systems = Systems::new(Box::new(Sequential), size);
        systems.prepare(Some(Strategy::Threaded));
        systems.prepare(Some(Strategy::Pool));
        let sizes: Vec<Option<usize>> = systems
            .systems
            .iter()
            .map(|s| s.worker_stack_size())
            .collect();
        assert_eq!(sizes, [None, Some(size), Some(size)]);
    }
}
