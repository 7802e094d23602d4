//! [`Engine`]: runs modules every frame at a steady rate and swaps rebuilt libraries in
//! between two frames.
//!
//! A frame: wait for its deadline; apply what arrived since the last one (finished builds,
//! complete new library files: each a reload transaction); run every module once through
//! the module system; record the figures. Nothing that a module or a build does stops the
//! loop: panics, refused reloads and failed builds are events and log lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use grove::abi::FrameInfo;
use grove::{Backpressure, Configure, HealthStatus, Module};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::builder::{BuildEvent, BuildOptions, Builds, BuiltCrate};
use crate::bus::{Bus, Inbox, ModuleBus};
use crate::config::{ConfigOrigin, ConfigWatcher, GivenConfig};
use crate::console::Console;
use crate::error::{Error, Result};
use crate::events::{EngineEvent, Subscribers};
use crate::ffi::library::{HeaderInfo, Unmapped};
use crate::ffi::staging::Staging;
use crate::frame::FramePacer;
use crate::health::{HealthReport, ModuleHealth};
use crate::hosted::{HostedModule, Kind};
use crate::loaded::{Carry, LoadedModule, Reloaded, Restore, SavedState};
use crate::snapshot::{DEFAULT_SNAPSHOT_EVERY, Found, PreviousRun, Snapshots};
use crate::state_policy::{LossyPolicy, StatePolicy};
use crate::static_module::StaticModule;
use crate::stats::{FrameClock, ModuleTiming, Stats};
use crate::systems::{ModuleSystem, Strategy, Systems};
use crate::watch::{LibraryChecks, LibraryWatcher, WatchHub};
use crate::watchdog::{DEFAULT_CALL_LIMIT, Watchdog};

/// The default frame rate.
pub const DEFAULT_FPS: f64 = 60.0;

/// Runs modules every frame and reloads them when their libraries change.
///
/// ```no_run
/// # fn main() -> Result<(), grove_runtime::Error> {
/// let mut engine = grove_runtime::Engine::new()?;
/// engine.watch_crate("examples/hello-module")?; // build, load, rebuild on every edit
/// engine.run()                                  // 60 FPS until Ctrl-C
/// # }
/// ```
#[derive(Debug)]
pub struct Engine {
    modules: Vec<HostedModule>,
    systems: Systems,
    pacer: FramePacer,
    clock: FrameClock,
    subscribers: Subscribers,
    staging: Arc<Staging>,
    watch_files: bool,
    frame: u64,
    started: Option<Instant>,
    last_start: Option<Instant>,
    /// When a slow frame was last reported (at most one report a second).
    last_slow_report: Option<Instant>,
    /// The modules' figures when they were last shut down all together.
    shut_down: Vec<ModuleTiming>,
    stop: Arc<AtomicBool>,
    watchdog: Option<Watchdog>,
    /// Config files by module name ([`Engine::config_file`]).
    config_files: HashMap<String, ConfigFile>,
    config_watcher: Option<ConfigWatcher>,
    /// The one watcher of every file the engine watches: libraries, crates, configs.
    hub: WatchHub,
    /// The thread that checks new library files; started with the first watched library.
    library_checks: Option<LibraryChecks>,
    /// The thread that rebuilds watched crates; started with the first watched crate.
    builds: Option<Builds>,
    /// How long a frame may spend starting reloads ([`EngineBuilder::reload_budget`]).
    reload_budget: Option<Duration>,
    /// The module whose pending reload is looked at first next frame.
    reload_cursor: usize,
    /// The modules' health when they were last shut down all together.
    shut_down_health: Vec<ModuleHealth>,
    /// The module whose health is asked next, one a frame.
    health_cursor: usize,
    bus: Bus,
    /// The state directory's snapshots, when kept.
    snapshots: Option<Snapshots>,
    previous_run: Option<PreviousRun>,
    /// What a new version may do to the state it takes over.
    state_policy: StatePolicy,
}

/// The default of [`EngineBuilder::reload_budget`]: half a frame at 60 FPS.
pub const DEFAULT_RELOAD_BUDGET: Duration = Duration::from_micros(8_333);

/// A module's config file and the text last read from it.
#[derive(Debug)]
struct ConfigFile {
    path: PathBuf,
    /// Behind a lock only so that a load, which borrows the engine, can record it.
    last_text: Mutex<Option<String>>,
}

/// Configures an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder {
    fps: f64,
    system: DefaultSystem,
    /// `None`: the main thread's ([`Strategy::default_stack_size`]).
    worker_stack_size: Option<usize>,
    watch_files: bool,
    staging: Option<Arc<Staging>>,
    /// `None` unless the host said.
    allow_world_writable: Option<bool>,
    call_limit: Option<Duration>,
    crash_reports: bool,
    console: bool,
    state_dir: Option<PathBuf>,
    snapshot_every: Duration,
    reload_budget: Option<Duration>,
    state_policy: StatePolicy,
}

/// The engine's default system, as the builder was told it. A strategy's system is made in
/// [`EngineBuilder::build`], so that it gets the worker stack size whatever the order of
/// the calls.
#[derive(Debug)]
enum DefaultSystem {
    Strategy(Strategy),
    Given(Box<dyn ModuleSystem>),
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            fps: DEFAULT_FPS,
            system: DefaultSystem::Strategy(Strategy::Sequential),
            worker_stack_size: None,
            watch_files: true,
            staging: None,
            allow_world_writable: None,
            call_limit: Some(DEFAULT_CALL_LIMIT),
            crash_reports: true,
            console: true,
            state_dir: None,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            reload_budget: Some(DEFAULT_RELOAD_BUDGET),
            state_policy: StatePolicy::default(),
        }
    }
}

impl EngineBuilder {
    /// Target frame rate (60 by default); 0 runs unpaced (as fast as the modules allow).
    /// [`Engine::set_target_fps`] changes it later.
    pub fn target_fps(mut self, fps: f64) -> Self {
        self.fps = fps;
        self
    }

    /// How modules are run each frame, unless they are added with a strategy of their own;
    /// [`Sequential`](crate::Sequential) by default. A system given here keeps its own
    /// stack size for its threads ([`EngineBuilder::worker_stack_size`] does not change it).
    pub fn system(mut self, system: impl ModuleSystem + 'static) -> Self {
        self.system = DefaultSystem::Given(Box::new(system));
        self
    }

    /// As [`EngineBuilder::system`], with a built-in strategy (see [`Strategy::recommend`]).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.system = DefaultSystem::Strategy(strategy);
        self
    }

    /// The stack size, in bytes, of the threads that run modules under every system the
    /// engine creates from a [`Strategy`] ([`Threaded`](crate::Threaded)'s and
    /// [`Pool`](crate::Pool)'s): the default one ([`EngineBuilder::strategy`]) and those
    /// made for modules added with a strategy of their own. The OS may round it up.
    ///
    /// By default the main thread's stack size ([`Strategy::default_stack_size`]: the
    /// `RLIMIT_STACK` soft limit, 8 MiB if it is unlimited or cannot be read), not `std`'s
    /// 2 MiB: a module that recurses deep enough to work under
    /// [`Sequential`](crate::Sequential) on the main thread would otherwise overflow its
    /// stack, which aborts the whole process, once run on another system's thread. Set it
    /// higher for modules that recurse deeper, or lower to save address space with many
    /// [`Strategy::Threaded`] modules.
    pub fn worker_stack_size(mut self, bytes: usize) -> Self {
        self.worker_stack_size = Some(bytes);
        self
    }

    /// Whether loaded libraries are watched and reloaded when replaced (default: yes).
    pub fn watch_files(mut self, watch: bool) -> Self {
        self.watch_files = watch;
        self
    }

    /// Where loaded libraries' private copies go; a new private directory by default.
    /// A staging area given here keeps its own [`Staging::allow_world_writable`] setting:
    /// [`EngineBuilder::allow_world_writable`] set to anything else makes
    /// [`EngineBuilder::build`] fail.
    pub fn staging(mut self, staging: Arc<Staging>) -> Self {
        self.staging = Some(staging);
        self
    }

    /// Loads libraries even from world-writable files or directories, where another user
    /// could have replaced them (refused by default: loading a library runs its code).
    /// With a staging area of the host's own ([`EngineBuilder::staging`]), that staging
    /// area's setting applies, and must agree with this one.
    pub fn allow_world_writable(mut self, allow: bool) -> Self {
        self.allow_world_writable = Some(allow);
        self
    }

    /// How long one call into a module (`process`, `init`, a state transfer...) may run
    /// before the watchdog reports it, while it runs, naming the module and the call
    /// ([`EngineEvent::CallTooLong`] and a warning, again every `limit` after). One second
    /// by default; `None` turns the watchdog off.
    pub fn call_limit(mut self, limit: Option<Duration>) -> Self {
        self.call_limit = limit.filter(|l| !l.is_zero());
        self
    }

    /// Whether a fatal signal (segfault, bus error, illegal instruction, arithmetic trap,
    /// stack overflow, abort) inside a module's code prints which module, call and signal
    /// before the process ends (default: yes). The handler is installed once per process,
    /// passes every signal on to the handler that was there before, and says nothing for
    /// signals outside module code.
    pub fn crash_reports(mut self, report: bool) -> Self {
        self.crash_reports = report;
        self
    }

    /// Whether the engine prints its own short lines on stderr (builds and their progress,
    /// compile errors, loads, reloads, refusals, panics) and loaded modules' log events
    /// (`INFO` and above) while `tracing` would show nothing: no global subscriber set and
    /// none scoped on the thread (default: yes). Once the host sets a subscriber, the
    /// lines stop and everything goes through `tracing`.
    pub fn console(mut self, print: bool) -> Self {
        self.console = print;
        self
    }

    /// How long one frame may spend on reloads, when several new libraries are due at once
    /// (hundreds of modules rebuilt together, say): a frame starts another reload only if
    /// one as long as its longest so far still fits in the budget; the others are done in
    /// the next frames, the modules that waited first. A frame always does at least one, so
    /// every reload gets done, however long one takes. Half a frame at 60 FPS
    /// ([`DEFAULT_RELOAD_BUDGET`], 8.3 ms) by default; `None` does every reload due in the
    /// frame it is found, however long that frame gets.
    pub fn reload_budget(mut self, budget: Option<Duration>) -> Self {
        self.reload_budget = budget;
        self
    }

    /// Keeps every loaded module's state in `dir` (made if missing), one file per module,
    /// so that it outlives the process: saved every
    /// [`snapshot_every`](EngineBuilder::snapshot_every) (5 s by default), after every
    /// reload and at shutdown, and restored when a module of that name loads, even after a
    /// crash or a kill (the engine then says how the previous run ended:
    /// [`Engine::previous_run`]). Off by default. A directory that cannot be written is an
    /// error here.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// How often snapshots are taken with a [`state_dir`](EngineBuilder::state_dir): what
    /// a killed host loses at most.
    pub fn snapshot_every(mut self, every: Duration) -> Self {
        self.snapshot_every = every;
        self
    }

    /// What to do when a new version cannot hold some values of the state exactly (an
    /// `f64` of 1e300 read as an `f32`, a `u64` above 2^53 read as an `f64`): take it and
    /// warn, naming each value ([`LossyPolicy::Warn`], the default), or refuse the reload
    /// ([`LossyPolicy::Refuse`]). Applies to reloads and to snapshots restored at load.
    pub fn lossy_state(mut self, policy: LossyPolicy) -> Self {
        self.state_policy.lossy = policy;
        self
    }

    /// Whether a new version whose state shares no field with the running one's (another
    /// type under the same module name, most likely) may take over, starting from its
    /// default. Refused by default, since all of the state would be dropped;
    /// [`Engine::reload_fresh`] does it for one reload, writing the old state to a file.
    pub fn allow_unrelated_state(mut self, allow: bool) -> Self {
        self.state_policy.allow_unrelated = allow;
        self
    }

    /// The engine. Fails if the staging directory cannot be made, or if two settings
    /// contradict each other.
    pub fn build(self) -> Result<Engine> {
        let staging = match (self.staging, self.allow_world_writable) {
            (Some(staging), Some(allow)) if staging.allows_world_writable() != allow => {
                return Err(Error::ConflictingSettings {
                    setting: "allow_world_writable",
                    other: "staging",
                    advice: "the staging area given decides which files load: set \
                             Staging::allow_world_writable on it instead",
                });
            }
            (Some(staging), _) => staging,
            (None, allow) => Arc::new(Staging::new()?.allow_world_writable(allow.unwrap_or(false))),
        };
        let stack_size = self
            .worker_stack_size
            .unwrap_or_else(Strategy::default_stack_size);
        let system = match self.system {
            DefaultSystem::Strategy(strategy) => strategy.system_with_stack_size(stack_size),
            DefaultSystem::Given(system) => system,
        };
        if self.crash_reports {
            crate::ffi::crash::install();
        }
        let (snapshots, previous_run) = match &self.state_dir {
            Some(dir) => {
                let (snapshots, previous) = Snapshots::open(dir, self.snapshot_every)?;
                if let Some(previous) = &previous {
                    tracing::warn!(dir = %dir.display(), "{previous}; modules resume from their last snapshots");
                }
                (Some(snapshots), previous)
            }
            None => (None, None),
        };
        let subscribers = Subscribers::new(Console::new(self.console));
        let stop = Arc::new(AtomicBool::new(false));
        let watchdog = self
            .call_limit
            .map(|limit| Watchdog::start(limit, subscribers.clone(), Arc::clone(&stop)));
        Ok(Engine {
            modules: Vec::new(),
            systems: Systems::new(system, stack_size),
            pacer: FramePacer::new(self.fps),
            clock: FrameClock::default(),
            subscribers,
            staging,
            watch_files: self.watch_files,
            frame: 0,
            started: None,
            last_start: None,
            last_slow_report: None,
            shut_down: Vec::new(),
            stop,
            watchdog,
            config_files: HashMap::new(),
            config_watcher: None,
            hub: WatchHub::default(),
            library_checks: None,
            builds: None,
            reload_budget: self.reload_budget,
            reload_cursor: 0,
            shut_down_health: Vec::new(),
            health_cursor: 0,
            bus: Bus::default(),
            snapshots,
            previous_run,
            state_policy: self.state_policy,
        })
    }
}

/// Stops a running [`Engine`] from another thread (or a signal handler's flag).
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Asks the engine to finish the current frame, shut its modules down and return.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Engine {
    /// An engine at 60 FPS, running modules in sequence, watching their files.
    pub fn new() -> Result<Self> {
        Self::builder().build()
    }

    /// Configure an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Changes the target frame rate; 0 is unpaced.
    pub fn set_target_fps(&mut self, fps: f64) {
        self.pacer.set_fps(fps);
    }

    /// The target frame rate; 0 when unpaced.
    pub fn target_fps(&self) -> f64 {
        self.pacer.period().map_or(0.0, |p| 1.0 / p.as_secs_f64())
    }

    /// The default module system's name.
    pub fn system_name(&self) -> &'static str {
        self.systems.default_system().name()
    }

    /// The name of the module system that runs module `name`.
    pub fn module_system(&self, name: &str) -> Result<&'static str> {
        Ok(self.systems.name_for(self.find(name)?.strategy))
    }

    /// Runs module `name` under `strategy` from the next frame on (a module keeps its state
    /// and its place in the order; under [`Strategy::Threaded`] it gets a new thread).
    pub fn set_strategy(&mut self, name: &str, strategy: Strategy) -> Result<()> {
        self.find(name)?;
        self.systems.prepare(Some(strategy));
        self.find_mut(name)?.strategy = Some(strategy);
        Ok(())
    }

    /// Events from now on: loads, reloads, refusals, panics, builds.
    pub fn subscribe(&self) -> Receiver<EngineEvent> {
        self.subscribers.subscribe()
    }

    /// A handle that stops [`Engine::run`] from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.stop))
    }

    /// The staging area for loaded libraries' copies.
    pub fn staging(&self) -> &Arc<Staging> {
        &self.staging
    }

    /// The number of the next frame to run.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// The modules' names, in the order they run.
    pub fn module_names(&self) -> Vec<String> {
        self.modules.iter().map(|m| m.name().to_owned()).collect()
    }

    /// The generation of module `name` (1 after loading, +1 per reload; 0 if static).
    ///
    /// After [`Engine::run`] returns, the generation each module had when it was shut down.
    pub fn generation(&self, name: &str) -> Result<u64> {
        if self.modules.is_empty()
            && let Some(timing) = self.shut_down.iter().find(|t| t.name == name)
        {
            return Ok(timing.generation);
        }
        Ok(self.find(name)?.generation())
    }

    fn frame_info(&self, start: Instant) -> FrameInfo {
        let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        FrameInfo {
            frame: self.frame,
            delta_ns: self.last_start.map_or(0, |last| nanos(start - last)),
            elapsed_ns: self.started.map_or(0, |first| nanos(start - first)),
        }
    }

    fn check_new_name(&self, name: &str) -> Result<()> {
        if self.modules.iter().any(|m| m.name() == name) {
            return Err(Error::DuplicateModule {
                module: name.to_owned(),
            });
        }
        Ok(())
    }

    fn find(&self, name: &str) -> Result<&HostedModule> {
        self.modules
            .iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| self.unknown(name))
    }

    fn find_mut(&mut self, name: &str) -> Result<&mut HostedModule> {
        match self.modules.iter().position(|m| m.name() == name) {
            Some(index) => Ok(&mut self.modules[index]),
            None => Err(self.unknown(name)),
        }
    }

    fn unknown(&self, name: &str) -> Error {
        if self.modules.is_empty() && self.shut_down.iter().any(|t| t.name == name) {
            return Error::ShutDown {
                module: name.to_owned(),
            };
        }
        Error::UnknownModule {
            module: name.to_owned(),
            known: self.module_names(),
        }
    }

    /// Loads the module library at `path`, runs its `init`, and (unless disabled) watches
    /// the file: a complete new version is swapped in between two frames. Returns the
    /// module's name.
    pub fn load_module(&mut self, path: impl AsRef<Path>) -> Result<String> {
        self.load(path.as_ref(), None)
    }

    /// As [`Engine::load_module`], running the module under `strategy` rather than the
    /// engine's default system.
    pub fn load_module_with(
        &mut self,
        path: impl AsRef<Path>,
        strategy: Strategy,
    ) -> Result<String> {
        self.load(path.as_ref(), Some(strategy))
    }

    fn load(&mut self, path: &Path, strategy: Option<Strategy>) -> Result<String> {
        let frame = self.frame_info(Instant::now());
        let snapshot = std::cell::RefCell::new(None);
        // Its first `init` may subscribe and publish: its end of the bus comes first.
        let mut bus = ModuleBus::new("");
        bus.begin_init();
        // The name is checked from the library's header, before any of its code runs.
        let loaded = crate::bus::lend(&mut bus, || {
            LoadedModule::load_admitted(
                path,
                &self.staging,
                &frame,
                &|header| self.check_new_name(&header.module_name),
                &|calls| {
                    if let Some(watchdog) = &self.watchdog {
                        watchdog.watch(calls);
                    }
                },
                &|name| self.initial_config(name),
                &|name| {
                    let found = self.snapshots.as_ref()?.find(name)?;
                    let state = match &found {
                        Found::State { state, version, .. } => Some(SavedState {
                            bytes: state.clone(),
                            version: *version,
                            policy: self.state_policy,
                        }),
                        Found::Bad { .. } => None,
                    };
                    *snapshot.borrow_mut() = Some(found);
                    state
                },
            )
        });
        bus.end_init(loaded.is_ok());
        let (mut module, restore) = loaded?;
        module.set_state_policy(self.state_policy);
        let name = module.name().to_owned();
        if let Some(found) = snapshot.into_inner() {
            self.report_restore(&name, found, restore);
        }
        let watcher = if self.watch_files {
            let watch_error = |source| Error::Watch {
                path: path.to_owned(),
                source: Arc::new(source),
            };
            let checks = match &mut self.library_checks {
                Some(checks) => checks,
                None => self
                    .library_checks
                    .insert(LibraryChecks::start(self.hub.clone()).map_err(watch_error)?),
            };
            Some(
                LibraryWatcher::new(path, module.content_hash(), &self.staging, checks)
                    .map_err(watch_error)?,
            )
        } else {
            None
        };
        let mut hosted = HostedModule::with_bus(Kind::Loaded(Box::new(module)), bus);
        hosted.watcher = watcher;
        hosted.strategy = strategy;
        self.systems.prepare(strategy);
        self.push(hosted);
        self.subscribers.send(EngineEvent::Loaded {
            module: name.clone(),
            path: Some(path.to_owned()),
        });
        if let Some(file) = self.config_files.get(&name) {
            self.subscribers.send(EngineEvent::Configured {
                module: name.clone(),
                origin: ConfigOrigin::File(file.path.clone()),
            });
        }
        Ok(name)
    }

    /// Reports what became of module `name`'s snapshot at load.
    fn report_restore(&mut self, name: &str, found: Found, restore: Restore) {
        let found = match (found, restore.error) {
            (Found::State { path, .. }, Some(error)) => {
                let problem = format!("its state does not load into this version: {error}");
                match &self.snapshots {
                    Some(snapshots) => snapshots.set_aside(path, problem),
                    None => return,
                }
            }
            (found, _) => found,
        };
        let event = match found {
            Found::State { age, path, .. } => {
                tracing::info!(module = %name, age_s = age.as_secs_f64(), path = %path.display(), "state restored from its snapshot");
                crate::loaded::log_fields(
                    name,
                    restore.fields.as_ref(),
                    grove::state::StateFormat::SelfDescribing,
                );
                EngineEvent::Restored {
                    module: name.to_owned(),
                    path,
                    age,
                    fields: restore.fields,
                }
            }
            Found::Bad {
                path,
                moved_to,
                problem,
            } => {
                tracing::warn!(module = %name, path = %path.display(), moved_to = ?moved_to, "snapshot not used, set aside ({problem}); the module starts from its default");
                EngineEvent::SnapshotSetAside {
                    module: name.to_owned(),
                    path,
                    moved_to,
                    problem,
                }
            }
        };
        self.subscribers.send(event);
    }

    /// Takes a snapshot of loaded module `name`, if the engine keeps them.
    fn snapshot_module(&mut self, name: &str) {
        if let Some(index) = self.modules.iter().position(|m| m.name() == name) {
            self.snapshot_at(index);
        }
    }

    /// Takes a snapshot of the module at `index` if it is loaded and not faulted (a
    /// faulted one keeps its last good snapshot).
    fn snapshot_at(&mut self, index: usize) {
        let Some(snapshots) = &self.snapshots else {
            return;
        };
        let hosted = &mut self.modules[index];
        if hosted.is_faulted() {
            return;
        }
        if let Some(module) = hosted.loaded_mut()
            && let Err(error) = snapshots.take(module)
        {
            let (module, error) = (module.name().to_owned(), error.to_string());
            tracing::warn!(module = %module, "snapshot not taken: {error}");
            self.subscribers
                .send(EngineEvent::SnapshotFailed { module, error });
        }
    }

    /// Snapshots of every loaded module that is not faulted.
    pub(crate) fn snapshot_all(&mut self) {
        if self.snapshots.is_none() {
            return;
        }
        for index in 0..self.modules.len() {
            self.snapshot_at(index);
        }
    }

    /// Reports snapshots the writer could not write, and returns them.
    fn report_snapshot_failures(&mut self) -> Vec<(String, String)> {
        let Some(snapshots) = &self.snapshots else {
            return Vec::new();
        };
        let failures = snapshots.failures();
        for (module, error) in &failures {
            tracing::warn!(module = %module, "snapshot not written: {error}");
            self.subscribers.send(EngineEvent::SnapshotFailed {
                module: module.clone(),
                error: error.clone(),
            });
        }
        failures
    }

    /// How the previous run that used this engine's state directory ended, when it did
    /// not end cleanly: a crash in a module (which, which call, which signal) or an end
    /// without shutdown (killed). Read when the engine was built.
    pub fn previous_run(&self) -> Option<&PreviousRun> {
        self.previous_run.as_ref()
    }

    /// The state directory, when the engine keeps snapshots.
    pub fn state_dir(&self) -> Option<&Path> {
        self.snapshots.as_ref().map(Snapshots::dir)
    }

    /// Takes a snapshot of every loaded module now and waits until they are on disk.
    pub fn snapshot_now(&mut self) {
        self.snapshot_all();
        self.snapshot_now_flush();
    }

    /// Waits until every snapshot taken is on disk, and reports those that failed.
    pub(crate) fn snapshot_now_flush(&mut self) {
        if let Some(snapshots) = &self.snapshots {
            snapshots.flush();
        }
        self.report_snapshot_failures();
    }

    /// The config a module of that name starts with: its file's, or its type's defaults.
    fn initial_config(&self, name: &str) -> Result<GivenConfig> {
        let Some(file) = self.config_files.get(name) else {
            return Ok(GivenConfig::defaults());
        };
        let text = crate::config::read_text(name, &file.path)?;
        let given = GivenConfig::from_text(name, &file.path, text.clone());
        *file
            .last_text
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(text);
        given
    }

    /// Adds `hosted` after the others, and shares the per-frame timing among them all.
    fn push(&mut self, mut hosted: HostedModule) {
        let count = self.modules.len() + 1;
        hosted.clock.set_share(count);
        let stride = |n: usize| n / crate::stats::TIMED_PER_FRAME;
        if stride(count) != stride(count - 1) {
            for module in &mut self.modules {
                module.clock.set_share(count);
            }
        }
        self.modules.push(hosted);
    }

    /// Adds a module linked into the host (its crate used as an rlib). It runs through the
    /// same [`Module`] trait, without the C ABI; it is never reloaded. Its state is read
    /// and replaced as a loaded module's ([`Engine::module_state`],
    /// [`Engine::set_module_state`]): every `#[grove::module]` type is serde. A module
    /// type that is not (a host-side module holding handles) is added with
    /// [`Engine::add_linked`] and [`StaticModule::stateless`].
    pub fn add_static<M: Module + Serialize + DeserializeOwned>(
        &mut self,
        name: impl Into<String>,
        module: M,
    ) -> Result<()> {
        self.add_linked(StaticModule::new(name, module), None)
    }

    /// As [`Engine::add_static`], running the module under `strategy` rather than the
    /// engine's default system.
    pub fn add_static_with<M: Module + Serialize + DeserializeOwned>(
        &mut self,
        name: impl Into<String>,
        module: M,
        strategy: Strategy,
    ) -> Result<()> {
        self.add_linked(StaticModule::new(name, module), Some(strategy))
    }

    /// As [`Engine::add_static`], for a module that takes a config: its config file's
    /// ([`Engine::config_file`]) or its defaults, before its `init`; then
    /// [`Engine::configure`] and the file's saves, as for a loaded module.
    pub fn add_static_configured<M: Configure + Serialize + DeserializeOwned>(
        &mut self,
        name: impl Into<String>,
        module: M,
    ) -> Result<()> {
        let name = name.into();
        self.check_new_name(&name)?;
        self.add_linked(StaticModule::configured(name, module), None)
    }

    /// Adds a module linked into the host, made with any of [`StaticModule`]'s
    /// constructors, under `strategy` (`None`: the engine's default system).
    pub fn add_linked(
        &mut self,
        mut module: StaticModule,
        strategy: Option<Strategy>,
    ) -> Result<()> {
        let name = module.name().to_owned();
        self.check_new_name(&name)?;
        if let Some(watchdog) = &self.watchdog {
            watchdog.watch(module.calls());
        }
        module.apply_config(&self.initial_config(&name)?)?;
        let mut bus = ModuleBus::new(&name);
        bus.begin_init();
        let frame = self.frame_info(Instant::now());
        let initialised = crate::bus::lend(&mut bus, || module.init(&frame));
        bus.end_init(initialised.is_ok());
        initialised?;
        let mut hosted = HostedModule::with_bus(Kind::Static(module), bus);
        hosted.strategy = strategy;
        self.systems.prepare(strategy);
        self.push(hosted);
        self.subscribers.send(EngineEvent::Loaded {
            module: name.clone(),
            path: None,
        });
        if let Some(file) = self.config_files.get(&name) {
            self.subscribers.send(EngineEvent::Configured {
                module: name.clone(),
                origin: ConfigOrigin::File(file.path.clone()),
            });
        }
        Ok(())
    }

    /// Builds the module crate in `dir` with cargo, loads it, and rebuilds it in the
    /// background whenever its sources change; frames never wait for the compiler. A failed
    /// build keeps the running version. Returns the module's name.
    ///
    /// A crate can name its config file in its manifest, relative to the crate:
    ///
    /// ```toml
    /// [package.metadata.grove]
    /// config = "config.toml"
    /// ```
    ///
    /// It is then applied before the module's first `init` and watched, as with
    /// [`Engine::config_file`], unless the host gave the module a config file already.
    pub fn watch_crate(&mut self, dir: impl AsRef<Path>) -> Result<String> {
        self.watch_crate_with(dir, BuildOptions::default())
    }

    /// As [`Engine::watch_crate`], with build options (release, target dir, features).
    pub fn watch_crate_with(
        &mut self,
        dir: impl AsRef<Path>,
        options: BuildOptions,
    ) -> Result<String> {
        let dir = dir.as_ref();
        let built = BuiltCrate::build_reporting(dir, options, self.subscribers.console()).map_err(
            |source| Error::Build {
                dir: dir.to_owned(),
                source: Arc::new(source),
            },
        )?;
        self.watch_built(built)
    }

    /// Loads a module crate built by [`BuiltCrate::build`] (on another thread, while the
    /// frames went on) and watches it from then on, as [`Engine::watch_crate_with`] does
    /// after its build. The module's `init` runs here.
    pub fn watch_built(&mut self, built: BuiltCrate) -> Result<String> {
        let BuiltCrate {
            dir,
            builder,
            library: artifact,
        } = built;
        let build_error = |source| Error::Build {
            dir: dir.clone(),
            source: Arc::new(source),
        };
        // The config file the crate names in its manifest, unless the host gave one.
        if let Some(config) = crate::config::declared_config(&dir)? {
            let module = HeaderInfo::read(&artifact)?.module_name;
            if !self.config_files.contains_key(&module) {
                self.config_file(&module, &config)?;
            }
        }
        let name = self.load_module(&artifact)?;
        let builds = match &mut self.builds {
            Some(builds) => builds,
            None => self
                .builds
                .insert(Builds::start(self.hub.clone()).map_err(build_error)?),
        };
        let watch = builds.watch(builder, &artifact).map_err(build_error)?;
        if let Ok(hosted) = self.find_mut(&name) {
            hosted.build = Some(watch);
            hosted.crate_dir = Some(dir);
        }
        Ok(name)
    }

    /// Reloads module `name` from its library file now, whether or not it changed.
    pub fn reload(&mut self, name: &str) -> Result<Reloaded> {
        let frame = self.frame_info(Instant::now());
        let hosted = self.find_mut(name)?;
        let Some(module) = hosted.loaded_mut() else {
            return Err(Error::NotReloadable {
                module: name.to_owned(),
            });
        };
        let path = module.path().to_owned();
        let result = hosted
            .reload(&path, None, &frame, Carry::State)
            .expect("a loaded module");
        self.reload_done(name, result.clone());
        result
    }

    /// Reloads module `name` from its library file, starting the new version from its
    /// default state on purpose: the way out when the new version refuses the state (a
    /// field whose type changed, a migration that fails, another type). The running
    /// version's state is written to a file first, so nothing is lost: in the state
    /// directory if the engine has one, else next to the library, else in the temporary
    /// directory; [`Reloaded::old_state`] and the log line say where. The file holds the
    /// state by field name: read it with [`grove::Dynamic::from_slice`], or give it back
    /// with `engine.set_module_state(name, &Dynamic::from_slice(&bytes)?)`. When no file
    /// can be written, the reload is refused and the running version keeps its state.
    pub fn reload_fresh(&mut self, name: &str) -> Result<Reloaded> {
        let frame = self.frame_info(Instant::now());
        let state_dir = self.snapshots.as_ref().map(|s| s.dir().to_owned());
        let hosted = self.find_mut(name)?;
        let Some(module) = hosted.loaded_mut() else {
            return Err(Error::NotReloadable {
                module: name.to_owned(),
            });
        };
        let path = module.path().to_owned();
        let dirs: Vec<PathBuf> = state_dir
            .into_iter()
            .chain(path.parent().map(Path::to_owned))
            .chain([std::env::temp_dir()])
            .collect();
        let result = hosted
            .reload(&path, None, &frame, Carry::Fresh(&dirs))
            .expect("a loaded module");
        self.reload_done(name, result.clone());
        result
    }

    /// Records a reload's outcome: figures, event, log.
    fn reload_done(&mut self, name: &str, result: Result<Reloaded>) {
        let hosted = self.modules.iter_mut().find(|m| m.name() == name);
        match result {
            Ok(reloaded) => {
                if let Some(hosted) = hosted {
                    hosted.clock.reloads += 1;
                }
                self.clock.reloaded(reloaded.took);
                self.subscribers.send(EngineEvent::Reloaded(reloaded));
                self.snapshot_module(name);
            }
            Err(error) => {
                if let Some(hosted) = hosted {
                    hosted.clock.refused_reloads += 1;
                    hosted.health.last_error = Some(error.to_string());
                }
                self.clock.refused += 1;
                tracing::error!(module = %name, error = %error, "reload refused");
                self.subscribers.send(EngineEvent::ReloadRefused {
                    module: name.to_owned(),
                    error,
                });
            }
        }
    }

    /// The state of module `name` (loaded or static), decoded into `T` by field name (so
    /// `T` may hold only the fields you need).
    pub fn module_state<T: DeserializeOwned>(&mut self, name: &str) -> Result<T> {
        let bytes = self.find_mut(name)?.save_state()?;
        grove::state::load(&bytes, grove::state::StateFormat::SelfDescribing).map_err(|e| {
            Error::State {
                module: name.to_owned(),
                message: e.to_string(),
            }
        })
    }

    /// Replaces the state of module `name` (loaded or static) with `state`, between two
    /// frames: any serde value, decoded by the module by field name as a reload between
    /// versions would (fields `state` does not have take their default). A state the
    /// module cannot read is refused with the field named, and the module keeps the state
    /// it had.
    ///
    /// ```no_run
    /// # fn f(engine: &mut grove_runtime::Engine) -> grove_runtime::Result<()> {
    /// #[derive(serde::Serialize)]
    /// struct Counter { count: u64 }
    /// engine.set_module_state("counter", &Counter { count: 100 })?;
    /// # Ok(()) }
    /// ```
    pub fn set_module_state<T: Serialize>(&mut self, name: &str, state: &T) -> Result<()> {
        let hosted = self.find_mut(name)?;
        let bytes =
            grove::state::save(state, grove::state::StateFormat::SelfDescribing).map_err(|e| {
                Error::State {
                    module: name.to_owned(),
                    message: e.to_string(),
                }
            })?;
        hosted.load_state(&bytes)
    }

    /// Applies what arrived since the last frame: build outcomes, new library files (as many
    /// as the reload budget allows), config files.
    fn apply_pending(&mut self, frame: &FrameInfo) {
        self.take_build_events();
        self.apply_reloads(frame);
        self.apply_saved_configs();
    }

    /// Reports build outcomes and files that are not libraries; keeps the libraries just
    /// built for modules whose files are not watched. Allocates only when something
    /// happened: this runs for every module, every frame.
    fn take_build_events(&mut self) {
        let mut events = Vec::new();
        for hosted in &mut self.modules {
            if let Some(build) = &hosted.build {
                while let Some(event) = build.poll() {
                    let name = match &hosted.kind {
                        Kind::Loaded(m) => m.name(),
                        Kind::Static(m) => m.name(),
                    };
                    match event {
                        BuildEvent::Started => {
                            tracing::info!(module = %name, "rebuilding");
                            events.push(EngineEvent::BuildStarted {
                                module: name.to_owned(),
                            });
                        }
                        BuildEvent::Finished {
                            took,
                            artifact,
                            changed,
                        } => {
                            let took_ms = took.as_millis() as u64;
                            if changed {
                                tracing::info!(module = %name, took_ms, "rebuilt");
                            } else {
                                tracing::info!(module = %name, took_ms, "rebuilt; the library is unchanged, nothing to reload");
                            }
                            // Without a file watcher, the build's own artifact is the news.
                            if changed && hosted.watcher.is_none() {
                                hosted.built = Some(artifact);
                            }
                            events.push(EngineEvent::BuildFinished {
                                module: name.to_owned(),
                                took,
                                library_changed: changed,
                            });
                        }
                        BuildEvent::Failed { error } => {
                            tracing::error!(module = %name, "build failed, the running version keeps going:\n{error}");
                            events.push(EngineEvent::BuildFailed {
                                module: name.to_owned(),
                                error: Error::Build {
                                    dir: hosted.crate_dir.clone().unwrap_or_default(),
                                    source: Arc::new(error),
                                },
                            });
                        }
                    }
                }
            }
            if let Some((reason, path)) = hosted
                .watcher
                .as_ref()
                .and_then(|w| w.poll_invalid().map(|r| (r, w.path().to_owned())))
            {
                let name = hosted.name();
                tracing::warn!(module = %name, path = %path.display(), reason, "the file at the module's path is not a module library; the running version keeps going");
                events.push(EngineEvent::LibraryInvalid {
                    module: name.to_owned(),
                    path,
                    reason,
                });
            }
        }
        for event in events {
            self.subscribers.send(event);
        }
    }

    /// Swaps in the new libraries that are due, module after module from where the last
    /// frame stopped, as long as another reload as long as the longest of the frame fits in
    /// the reload budget (at least one a frame). The others stay waiting in their watchers,
    /// each with only its newest version, for the next frames.
    fn apply_reloads(&mut self, frame: &FrameInfo) {
        let count = self.modules.len();
        if count == 0 {
            return;
        }
        let started = Instant::now();
        let mut reloads = Vec::new();
        // The longest reload of this frame: the next one is started only if one as long
        // still fits in the budget.
        let mut longest = Duration::ZERO;
        let first = self.reload_cursor % count;
        for offset in 0..count {
            let index = (first + offset) % count;
            let hosted = &mut self.modules[index];
            let before = Instant::now();
            let Some(result) = reload_due(hosted, frame) else {
                continue;
            };
            longest = longest.max(before.elapsed());
            reloads.push((hosted.name().to_owned(), result));
            if self
                .reload_budget
                .is_some_and(|budget| started.elapsed() + longest > budget)
            {
                self.reload_cursor = index + 1;
                let waiting = self
                    .modules
                    .iter()
                    .filter(|m| {
                        m.built.is_some() || m.watcher.as_ref().is_some_and(LibraryWatcher::has_new)
                    })
                    .count();
                if waiting > 0 {
                    tracing::debug!(
                        reloaded = reloads.len(),
                        waiting,
                        took_us = started.elapsed().as_micros() as u64,
                        "reload budget spent; the other reloads wait for the next frames"
                    );
                }
                break;
            }
        }
        for (name, result) in reloads {
            self.reload_done(&name, result);
        }
    }

    /// Applies config files saved since the last frame (and quiet since).
    fn apply_saved_configs(&mut self) {
        let Some(watcher) = &self.config_watcher else {
            return;
        };
        let saved = watcher.settled();
        for path in saved {
            let modules: Vec<String> = self
                .config_files
                .iter()
                .filter(|(_, file)| file.path == path)
                .map(|(name, _)| name.clone())
                .collect();
            for name in modules {
                let result = crate::config::read_text(&name, &path).and_then(|text| {
                    // An editor that truncates and then writes shows an empty file in
                    // between; applying it would reset every field for a moment. A config
                    // that means "all defaults" says so with a comment.
                    if text.trim().is_empty() {
                        tracing::info!(module = %name, path = %path.display(), "config file is empty (being written?): the config in force stays");
                        return Ok(None);
                    }
                    let file = &self.config_files[&name];
                    let mut last = file
                        .last_text
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if last.as_deref() == Some(text.as_str()) {
                        return Ok(None);
                    }
                    *last = Some(text.clone());
                    GivenConfig::from_text(&name, &path, text).map(Some)
                });
                match result {
                    Ok(None) => {}
                    Ok(Some(given)) => {
                        // A module not loaded (yet) takes the file when it loads.
                        if self.find(&name).is_ok() {
                            let _ = self.apply_config(&name, &given);
                        }
                    }
                    Err(error) => self.config_refused(&name, error),
                }
            }
        }
    }

    /// Hands module `name` the config `given`; events and logs either way.
    fn apply_config(&mut self, name: &str, given: &GivenConfig) -> Result<()> {
        let hosted = self.find_mut(name)?;
        let result = match &mut hosted.kind {
            Kind::Loaded(module) => module.apply_config(given),
            Kind::Static(module) => module.apply_config(given),
        };
        match &result {
            Ok(()) => {
                tracing::info!(module = %name, from = %given.origin, "config applied");
                self.subscribers.send(EngineEvent::Configured {
                    module: name.to_owned(),
                    origin: given.origin.clone(),
                });
            }
            Err(error) => self.config_refused(name, error.clone()),
        }
        result
    }

    fn config_refused(&mut self, name: &str, error: Error) {
        tracing::error!("{error}");
        if let Ok(hosted) = self.find_mut(name) {
            hosted.health.refused_configs += 1;
            hosted.health.last_error = Some(error.to_string());
        }
        self.subscribers.send(EngineEvent::ConfigRefused {
            module: name.to_owned(),
            error,
        });
    }

    /// Gives module `name` its config from the file at `path` (TOML, or JSON when the name
    /// ends in `.json`), now if the module is loaded, else when it loads (before its first
    /// `init`), and again whenever the file is saved, between two frames.
    ///
    /// A file that does not parse, or that the module refuses (an unknown field, a value
    /// of the wrong type, its `configure` returning an error or panicking), is refused
    /// with an error naming the file, line and field, and the config in force stays. Here
    /// that is returned (and nothing is watched); for a later save it is an
    /// [`EngineEvent::ConfigRefused`] and an error line, and the next save is tried
    /// again. The file stays the module's config across reloads and unloads.
    pub fn config_file(&mut self, module: &str, path: impl AsRef<Path>) -> Result<()> {
        let path =
            crate::config::canonical_file(path.as_ref()).map_err(|source| Error::ConfigFile {
                module: module.to_owned(),
                path: path.as_ref().to_owned(),
                source: Arc::new(source),
            })?;
        let text = crate::config::read_text(module, &path)?;
        let given = GivenConfig::from_text(module, &path, text.clone())?;
        if self.find(module).is_ok() {
            self.apply_config(module, &given)?;
        }
        let hub = &self.hub;
        let watcher = self
            .config_watcher
            .get_or_insert_with(|| ConfigWatcher::new(hub.clone()));
        watcher.watch(&path).map_err(|e| Error::ConfigFile {
            module: module.to_owned(),
            path: path.clone(),
            source: Arc::new(std::io::Error::other(e)),
        })?;
        let old = self.config_files.insert(
            module.to_owned(),
            ConfigFile {
                path: path.clone(),
                last_text: Mutex::new(Some(text)),
            },
        );
        if let Some(old) = old.filter(|old| old.path != path)
            && !self.config_files.values().any(|f| f.path == old.path)
        {
            watcher.unwatch(&old.path);
        }
        Ok(())
    }

    /// Gives module `name` a whole new config (fields not given take their default),
    /// between two frames. A config the module refuses is returned as
    /// [`Error::ConfigRefused`] naming the field; the config in force stays.
    pub fn configure(&mut self, name: &str, config: &impl Serialize) -> Result<()> {
        let value = to_config_value(name, config, ConfigOrigin::Code)?;
        self.apply_config(name, &GivenConfig::new(value, ConfigOrigin::Code))
    }

    /// Changes some fields of module `name`'s config: `patch` is read over the config in
    /// force, struct by struct at every depth (a field the patch does not give keeps its
    /// value; a map, list or enum the patch gives replaces the one in force whole), and
    /// the result applied as [`Engine::configure`] does.
    ///
    /// ```no_run
    /// # fn f(engine: &mut grove_runtime::Engine) -> grove_runtime::Result<()> {
    /// engine.configure_partial("particles", &serde_json::json!({ "emitter": { "rate": 40.0 } }))?;
    /// # Ok(()) }
    /// ```
    pub fn configure_partial(&mut self, name: &str, patch: &impl Serialize) -> Result<()> {
        let patch = to_config_value(name, patch, ConfigOrigin::Partial)?;
        let in_force = self.config(name)?;
        self.apply_config(name, &GivenConfig::partial(in_force, patch))
    }

    /// The config in force for module `name`, every field included.
    pub fn config(&self, name: &str) -> Result<serde_json::Value> {
        let hosted = self.find(name)?;
        let config = match &hosted.kind {
            Kind::Loaded(module) => module.config().cloned(),
            Kind::Static(module) => module.config().cloned(),
        };
        config.ok_or_else(|| Error::NoConfig {
            module: name.to_owned(),
        })
    }

    /// The config in force for module `name`, decoded into `T` (by field name: `T` may hold
    /// only the fields you need).
    pub fn config_as<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        serde_json::from_value(self.config(name)?).map_err(|e| Error::State {
            module: name.to_owned(),
            message: format!("the config in force does not decode into the type asked for: {e}"),
        })
    }

    /// How every module is doing: each one's own report ([`Module::health`], asked now),
    /// generation, fault and last error, process-time percentiles, reloads and refusals.
    /// Serializable with serde, to serve as JSON.
    ///
    /// After [`Engine::run`] returns, the modules as they were when they were shut down.
    pub fn health(&mut self) -> HealthReport {
        if self.modules.is_empty() && !self.shut_down_health.is_empty() {
            return HealthReport {
                frame: self.frame,
                modules: self.shut_down_health.clone(),
            };
        }
        for index in 0..self.modules.len() {
            self.poll_health(index);
        }
        self.health_report()
    }

    fn health_report(&self) -> HealthReport {
        HealthReport {
            frame: self.frame,
            modules: self
                .modules
                .iter()
                .map(HostedModule::health_entry)
                .collect(),
        }
    }

    /// Asks module `index` how it is doing; an event when its status changed.
    fn poll_health(&mut self, index: usize) {
        let hosted = &mut self.modules[index];
        let Some((previous, health)) = hosted.poll_health() else {
            return;
        };
        let module = hosted.name().to_owned();
        let event = EngineEvent::HealthChanged {
            module,
            previous,
            health,
        };
        match &event {
            EngineEvent::HealthChanged { health, .. }
                if health.status() == HealthStatus::Healthy =>
            {
                tracing::info!("{event}");
            }
            _ => tracing::warn!("{event}"),
        }
        self.subscribers.send(event);
    }

    /// Asks one module a frame how it is doing, each about once a second.
    fn poll_due_health(&mut self) {
        if self.modules.is_empty() {
            return;
        }
        self.health_cursor = (self.health_cursor + 1) % self.modules.len();
        if self.modules[self.health_cursor].health.due(Instant::now()) {
            self.poll_health(self.health_cursor);
        }
    }

    /// Runs one frame: waits for its deadline (unless unpaced), applies pending reloads,
    /// runs every module once. Panics are contained and reported as events.
    pub fn step(&mut self) {
        let start = self.pacer.wait();
        self.started.get_or_insert(start);
        self.clock.frame_started(start);
        let frame = self.frame_info(start);
        self.apply_pending(&frame);
        self.bus.route_host(&mut self.modules);
        let failures = self.systems.run_frame(&mut self.modules, &frame);
        self.bus.route_modules(&mut self.modules);
        self.report_bus_problems();
        for (index, error) in failures {
            self.modules[index].health.last_error = Some(error.to_string());
            let module = self.modules[index].name().to_owned();
            tracing::error!(module = %module, frame = frame.frame, error = %error, "module panicked; skipped until it is reloaded");
            self.subscribers.send(EngineEvent::Panicked {
                module,
                frame: frame.frame,
                error,
            });
        }
        self.poll_due_health();
        if self.snapshots.as_mut().is_some_and(Snapshots::due) {
            self.snapshot_all();
            self.report_snapshot_failures();
        }
        let took = start.elapsed();
        self.clock.frame_finished(took);
        self.report_slow_frame(frame.frame, took);
        self.last_start = Some(start);
        self.frame += 1;
    }

    /// Reports a frame of more than four periods at the target rate, with the module that
    /// took longest in it; at most once a second.
    fn report_slow_frame(&mut self, frame: u64, took: Duration) {
        let Some(budget) = self.pacer.period() else {
            return;
        };
        if took <= budget * 4
            || self
                .last_slow_report
                .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last_slow_report = Some(Instant::now());
        let slowest = self
            .modules
            .iter()
            .map(|m| (m.name(), m.last_process()))
            .max_by_key(|(_, took)| *took)
            .filter(|(_, took)| !took.is_zero())
            .map(|(name, took)| (name.to_owned(), took));
        let event = EngineEvent::SlowFrame {
            frame,
            took,
            budget,
            slowest,
        };
        tracing::warn!("{event}");
        self.subscribers.send(event);
    }

    fn report_bus_problems(&mut self) {
        if self.modules.iter().all(|m| m.bus.problems.is_empty()) {
            return;
        }
        for reported in self.bus.take_problems(&mut self.modules) {
            let event = EngineEvent::MessageProblem {
                module: reported.module,
                topic: reported.topic,
                problem: reported.problem,
            };
            if reported.log {
                tracing::warn!("{event}");
            }
            self.subscribers.send(event);
        }
    }

    /// Publishes `message` on `topic` from the host: subscribed modules receive it in the
    /// next frame (their `ctx.messages()`), with `host` as its publisher.
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct KeyPressed { code: u32 }
    /// # fn f(engine: &mut grove_runtime::Engine) -> grove_runtime::Result<()> {
    /// engine.publish("input:key", &KeyPressed { code: 32 })?;
    /// # Ok(()) }
    /// ```
    pub fn publish<T: Serialize + DeserializeOwned + 'static>(
        &mut self,
        topic: &str,
        message: &T,
    ) -> Result<()> {
        self.bus
            .publish(topic, message)
            .map_err(|source| Error::Bus { source })
    }

    /// An inbox for the messages on topics matching `pattern` (`render:*`, `score:**`):
    /// each frame's messages arrive after that frame, for the host to drain. Holds up to
    /// [`DEFAULT_CAPACITY`](grove::bus::DEFAULT_CAPACITY) messages, dropping the oldest;
    /// dropping the inbox ends the subscription.
    pub fn subscribe_topic(&mut self, pattern: &str) -> Result<Inbox> {
        self.subscribe_topic_with(
            pattern,
            Backpressure::DropOldest,
            grove::bus::DEFAULT_CAPACITY,
        )
    }

    /// As [`Engine::subscribe_topic`], with what a full inbox does and its capacity.
    pub fn subscribe_topic_with(
        &mut self,
        pattern: &str,
        backpressure: Backpressure,
        capacity: usize,
    ) -> Result<Inbox> {
        self.bus
            .subscribe(pattern, backpressure, capacity)
            .map_err(|source| Error::Bus { source })
    }

    /// Runs `n` frames.
    pub fn run_frames(&mut self, n: u64) {
        for _ in 0..n {
            self.step();
        }
    }

    /// Runs until Ctrl-C, SIGTERM or [`StopHandle::stop`], then shuts every module down.
    pub fn run(&mut self) -> Result<()> {
        self.run_with(|_| {})
    }

    /// As [`Engine::run`], calling `each_frame` after every frame (for a status line, say).
    pub fn run_with(&mut self, mut each_frame: impl FnMut(&mut Engine)) -> Result<()> {
        let signals = crate::signals::StopOnSignal::install(&self.stop)?;
        while !self.stop.load(Ordering::SeqCst) {
            self.step();
            each_frame(self);
        }
        drop(signals);
        self.stop.store(false, Ordering::SeqCst);
        tracing::info!(frames = self.frame, "stopping: shutting modules down");
        self.subscribers.console().line(format_args!(
            "stopping after {} frames: shutting modules down",
            self.frame
        ));
        self.shutdown()
    }

    /// Runs every module's `shutdown`, in registration order, and unloads them all. The
    /// first error is returned after every module has had its turn.
    /// Its figures stay readable: [`Engine::stats`] and [`Engine::generation`] answer for
    /// the modules as they were when they were shut down, until a module is added again.
    pub fn shutdown(&mut self) -> Result<()> {
        let frame = self.frame_info(Instant::now());
        if !self.modules.is_empty() {
            self.shut_down = self.modules.iter().map(HostedModule::timing).collect();
            self.shut_down_health = self.health_report().modules;
        }
        // The state as it ran, before `shutdown` runs.
        self.snapshot_all();
        let mut first_error = None;
        for hosted in self.modules.drain(..) {
            let name = hosted.name().to_owned();
            if let (Err(e), _) = hosted.shutdown(&frame) {
                tracing::error!(module = %name, error = %e, "shutdown failed");
                first_error.get_or_insert(e);
            }
        }
        if let Some(snapshots) = &self.snapshots {
            snapshots.close();
        }
        // The last snapshots are the state a restart resumes from: not writing them is
        // an error of the shutdown.
        if let Some((module, error)) = self.report_snapshot_failures().into_iter().next() {
            first_error.get_or_insert(Error::Snapshot {
                module,
                message: error,
            });
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Removes module `name` while the engine runs: runs its `shutdown`, destroys it,
    /// closes its library (checking that it left memory: see [`Unmapped`]) and stops
    /// watching its file and crate. The same module can be loaded again afterwards. An
    /// error from its `shutdown` is returned once it is gone all the same.
    pub fn unload(&mut self, name: &str) -> Result<Option<Unmapped>> {
        let index = self
            .modules
            .iter()
            .position(|m| m.name() == name)
            .ok_or_else(|| self.unknown(name))?;
        let frame = self.frame_info(Instant::now());
        let hosted = self.modules.remove(index);
        let count = self.modules.len().max(1);
        for module in &mut self.modules {
            module.clock.set_share(count);
        }
        let (result, unmapped) = hosted.shutdown(&frame);
        tracing::info!(module = %name, old_library = ?unmapped, "module unloaded");
        self.subscribers.send(EngineEvent::Unloaded {
            module: name.to_owned(),
            old_library: unmapped.clone(),
        });
        result.map(|()| unmapped)
    }

    /// The time the last frame spent working (reloads and modules, not the wait for its
    /// start); `None` before the first. Cheap enough to read every frame, for a graph.
    pub fn last_frame_time(&self) -> Option<Duration> {
        self.clock.last_frame()
    }

    /// Frame rate, frame times, per-module process times and reloads.
    ///
    /// After [`Engine::run`] (or [`Engine::shutdown`]) returns, the modules' figures are
    /// those they had when they were shut down.
    pub fn stats(&self) -> Stats {
        let modules = if self.modules.is_empty() {
            self.shut_down.clone()
        } else {
            self.modules.iter().map(HostedModule::timing).collect()
        };
        let mut stats = self.clock.snapshot(modules);
        stats.bus = self.bus.stats(&self.modules);
        stats
    }
}

impl Drop for Engine {
    /// An engine dropped is a clean end, whether or not a module is loaded (every load may
    /// have failed, or a host may give up on an error): modules shut down, their last
    /// snapshots written, and the state directory's `running` marker removed, so that the
    /// next run does not report a crash. A crash never gets here.
    fn drop(&mut self) {
        if !self.modules.is_empty() || self.snapshots.is_some() {
            let _ = self.shutdown();
        }
    }
}

/// Reloads `hosted` if a new library waits for it: one its crate's build made (when its
/// file is not watched), or one its watcher found. `None` when none waits (or the one found
/// is the version running).
fn reload_due(hosted: &mut HostedModule, frame: &FrameInfo) -> Option<Result<Reloaded>> {
    if let Some(artifact) = hosted.built.take() {
        return hosted.reload(&artifact, None, frame, Carry::State);
    }
    let new = hosted.watcher.as_ref().and_then(LibraryWatcher::poll)?;
    let module = hosted.loaded_mut()?;
    if new.snapshot.hash == module.content_hash() {
        return None;
    }
    let name = module.name().to_owned();
    let result = hosted.reload(&new.path, Some(new.snapshot), frame, Carry::State)?;
    match &result {
        Ok(reloaded) => tracing::debug!(
            module = %name,
            detected_to_running_us = new.detected.elapsed().as_micros() as u64,
            took_us = reloaded.took.as_micros() as u64,
            "file change applied"
        ),
        Err(_) => {
            if let (Some(module), Some(watcher)) = (
                hosted.loaded_mut().map(|m| m.content_hash()),
                &hosted.watcher,
            ) {
                watcher.retry_refused(module);
            }
        }
    }
    Some(result)
}

/// A config given from code, as the JSON table handed to the module.
fn to_config_value(
    module: &str,
    config: &impl Serialize,
    origin: ConfigOrigin,
) -> Result<serde_json::Value> {
    let refused = |message: String| Error::ConfigRefused {
        module: module.to_owned(),
        at: crate::config::ConfigLocation {
            origin: origin.clone(),
            line_column: None,
        },
        issue: grove::abi::ConfigIssue {
            field: Default::default(),
            message,
        },
    };
    match serde_json::to_value(config) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err(refused(
            "a config is a table of fields (a struct or a map)".into(),
        )),
        Err(e) => Err(refused(format!("cannot be written as a table: {e}"))),
    }
}
