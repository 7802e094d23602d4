//! The dashboard's model: what `cargo grove run` shows of each module and of the frames,
//! gathered from the engine's figures and events. It holds no terminal: [`view`] draws it,
//! [`keys`] turns key presses into [`Action`]s, and a test can drive both with ratatui's
//! test backend.
//!
//! Frame figures are pushed every frame ([`Dashboard::frame_done`]); events are drained
//! every frame (none is missed); the engine's statistics, health reports and configs are
//! read a few times a second ([`REFRESH`]), which is what a person can read.

pub mod keys;
pub mod view;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use grove_runtime::grove::HealthStatus;
use grove_runtime::grove::state::StateFormat;
use grove_runtime::{Engine, EngineEvent, Unmapped};

use crate::logs::LogLines;

pub use keys::Action;

/// How often the engine's figures are read.
pub const REFRESH: Duration = Duration::from_millis(250);

/// Frame times kept for the graph.
const FRAME_HISTORY: usize = 600;

/// Process-time samples kept per module (one per [`REFRESH`]).
const MODULE_HISTORY: usize = 120;

/// Reload-history entries kept per module.
const RELOAD_HISTORY: usize = 32;

/// What the dashboard knows of one module.
#[derive(Debug, Clone)]
pub struct ModuleView {
    /// Its name.
    pub name: String,
    /// The crate it is built from, when `cargo grove run` builds it: how to load it again.
    pub crate_dir: Option<PathBuf>,
    /// Whether it is in the engine (not unloaded).
    pub loaded: bool,
    /// The generation running (1 at the first load).
    pub generation: u64,
    /// Its health, as it reports it (or as the engine judges it: faulted is failed).
    pub status: Option<HealthStatus>,
    /// Its health message.
    pub message: String,
    /// Its metrics, as it reports them.
    pub metrics: Vec<(String, f64)>,
    /// `process` time, median and 99th percentile, in microseconds.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// Its last `process` times, in microseconds, oldest first, one per refresh.
    pub process_us: VecDeque<f64>,
    /// Whether it is skipped after a panic, until a new version loads.
    pub faulted: bool,
    /// The last error (a panic, a refused reload).
    pub last_error: Option<String>,
    /// Panics seen since the dashboard started.
    pub panics: u64,
    /// Reloads, refusals and failed builds, newest last.
    pub history: VecDeque<HistoryEntry>,
    /// Its crate's build, when it is built by the engine.
    pub build: BuildState,
    /// Messages it published and was handed, per second, and drops in all.
    pub messages: MessageRates,
    /// The config in force, as compact JSON; `None` when it takes none.
    pub config: Option<String>,
    /// Why it did not load when the run started, while it waits for its crate to build
    /// again.
    pub load_failed: Option<String>,
}

impl ModuleView {
    fn new(name: String, crate_dir: Option<PathBuf>) -> Self {
        Self {
            name,
            crate_dir,
            loaded: true,
            generation: 1,
            status: None,
            message: String::new(),
            metrics: Vec::new(),
            p50_us: 0.0,
            p99_us: 0.0,
            process_us: VecDeque::new(),
            faulted: false,
            last_error: None,
            panics: 0,
            history: VecDeque::new(),
            build: BuildState::Idle,
            messages: MessageRates::default(),
            config: None,
            load_failed: None,
        }
    }

    fn record(&mut self, frame: u64, what: HistoryKind) {
        if self.history.len() == RELOAD_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(HistoryEntry { frame, what });
    }
}

/// Message figures of one module.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageRates {
    /// Published per second, over the last refresh.
    pub published_per_sec: f64,
    /// Handed to it per second, over the last refresh.
    pub delivered_per_sec: f64,
    /// Dropped (its queue full), in all.
    pub dropped: u64,
    /// Refused (a full reject queue), in all.
    pub rejected: u64,
    /// Messages it could not decode, in all.
    pub decode_errors: u64,
    totals: (u64, u64),
}

/// Where a module crate's build stands.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildState {
    /// Nothing built since the dashboard started (or not built by the engine).
    Idle,
    /// cargo is running.
    Building {
        /// When it started.
        since: Instant,
    },
    /// The last build succeeded.
    Built {
        /// How long cargo ran.
        took: Duration,
        /// Whether the library changed.
        changed: bool,
    },
    /// The last build failed: the compiler's message. The running version is kept.
    Failed(String),
}

/// One line of a module's history.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The engine frame it happened before.
    pub frame: u64,
    /// What happened.
    pub what: HistoryKind,
}

/// What happened to a module.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HistoryKind {
    /// A new version took over.
    Reloaded {
        /// The generation now running.
        generation: u64,
        /// How long the swap took.
        took: Duration,
        /// The state carried over, in bytes.
        state_bytes: usize,
        /// How it was carried.
        format: StateFormat,
        /// Whether the old library left memory.
        unmapped: bool,
        /// What changed on the way (config fields dropped, ...), one line each.
        notes: Vec<String>,
    },
    /// A new version was refused; the running one kept its state.
    Refused(String),
    /// The crate failed to build.
    BuildFailed(String),
    /// It panicked and is skipped until a new version loads.
    Panicked(String),
    /// It was unloaded (its `shutdown` ran).
    Unloaded,
    /// It was loaded (again).
    Loaded,
    /// Its config was refused; the one in force stays.
    ConfigRefused(String),
    /// It started from the state a previous run saved.
    Restored {
        /// How old the state was.
        age: Duration,
        /// What became of its fields, in a few words.
        fields: String,
    },
    /// Its saved state could not be used and was set aside; it started from its default.
    SetAside(String),
}

/// What the dashboard shows.
#[derive(Debug)]
pub struct Dashboard {
    title: String,
    modules: Vec<ModuleView>,
    selected: usize,
    events: Receiver<EngineEvent>,
    logs: Option<LogLines>,
    /// Frame times (the time `step` took), in microseconds, oldest first.
    frame_us: VecDeque<f64>,
    frame: u64,
    fps: f64,
    target_fps: f64,
    paused: bool,
    last_refresh: Option<Instant>,
    /// A line of feedback on the last key (an action's result or refusal).
    pub notice: Option<String>,
}

impl Dashboard {
    /// A dashboard for `engine`'s modules, with the crates they are built from where known,
    /// taking in `events` (from [`Engine::subscribe`], made before the modules were loaded
    /// to show how their loading went).
    pub fn new(
        title: impl Into<String>,
        engine: &mut Engine,
        events: Receiver<EngineEvent>,
        crates: &[(String, Option<PathBuf>)],
        logs: Option<LogLines>,
    ) -> Self {
        let mut modules: Vec<_> = engine
            .module_names()
            .into_iter()
            .map(|name| {
                let dir = crates
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, d)| d.clone());
                ModuleView::new(name, dir)
            })
            .collect();
        for module in &mut modules {
            module.generation = engine.generation(&module.name).unwrap_or(1);
        }
        let mut dashboard = Self {
            title: title.into(),
            modules,
            selected: 0,
            events,
            logs,
            frame_us: VecDeque::with_capacity(FRAME_HISTORY),
            frame: engine.frame(),
            fps: 0.0,
            target_fps: engine.target_fps(),
            paused: false,
            last_refresh: None,
            notice: None,
        };
        dashboard.observe(engine);
        dashboard
    }

    /// The modules, in the order the engine runs them (unloaded ones stay listed).
    pub fn modules(&self) -> &[ModuleView] {
        &self.modules
    }

    /// The module the keys act on.
    pub fn selected(&self) -> Option<&ModuleView> {
        self.modules.get(self.selected)
    }

    /// Whether frames are paused.
    pub fn paused(&self) -> bool {
        self.paused
    }

    pub(crate) fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Records a frame's `step` time.
    pub fn frame_done(&mut self, took: Duration) {
        if self.frame_us.len() == FRAME_HISTORY {
            self.frame_us.pop_front();
        }
        self.frame_us.push_back(took.as_secs_f64() * 1e6);
    }

    /// Takes in what happened since the last call: every event now, the figures when a
    /// refresh is due.
    pub fn observe(&mut self, engine: &mut Engine) {
        let frame = engine.frame();
        for event in self.events.try_iter().collect::<Vec<_>>() {
            self.take_event(frame, event);
        }
        if self.last_refresh.is_none_or(|at| at.elapsed() >= REFRESH) {
            self.refresh(engine);
        }
    }

    /// Reads the engine's figures now.
    pub fn refresh(&mut self, engine: &mut Engine) {
        let now = Instant::now();
        let since = self.last_refresh.map(|at| now - at);
        self.last_refresh = Some(now);
        let stats = engine.stats();
        let health = engine.health();
        self.frame = engine.frame();
        self.fps = stats.recent_fps;
        self.target_fps = engine.target_fps();
        for module in &mut self.modules {
            let timing = stats.modules.iter().find(|t| t.name == module.name);
            let report = health.module(&module.name);
            module.loaded = timing.is_some();
            let (Some(timing), Some(report)) = (timing, report) else {
                continue;
            };
            module.generation = timing.generation;
            module.faulted = timing.faulted;
            module.p50_us = timing.process.p50.as_secs_f64() * 1e6;
            module.p99_us = timing.process.p99.as_secs_f64() * 1e6;
            if module.process_us.len() == MODULE_HISTORY {
                module.process_us.pop_front();
            }
            // A faulted module is skipped: it takes no time, whatever it took last.
            let last = if timing.faulted {
                0.0
            } else {
                timing.last.as_secs_f64() * 1e6
            };
            module.process_us.push_back(last);
            module.status = Some(report.status());
            module.message = report
                .report
                .as_ref()
                .map(|h| h.message().to_owned())
                .unwrap_or_default();
            module.metrics = report
                .report
                .as_ref()
                .map(|h| h.metrics().to_vec())
                .unwrap_or_default();
            if report.last_error.is_some() {
                module.last_error.clone_from(&report.last_error);
            }
            let bus = &report.messages;
            let rates = &mut module.messages;
            if let Some(since) = since.filter(|s| !s.is_zero()) {
                let secs = since.as_secs_f64();
                rates.published_per_sec =
                    bus.published.saturating_sub(rates.totals.0) as f64 / secs;
                rates.delivered_per_sec =
                    bus.delivered.saturating_sub(rates.totals.1) as f64 / secs;
            }
            rates.totals = (bus.published, bus.delivered);
            rates.dropped = bus.dropped;
            rates.rejected = bus.rejected;
            rates.decode_errors = bus.decode_errors;
            module.config = engine.config(&module.name).ok().map(|c| c.to_string());
        }
    }

    /// Module `name`, built from `dir`, did not load (`error`): listed as failed, waiting
    /// for its crate to build again.
    pub fn load_failed(&mut self, name: &str, dir: &Path, error: &str) {
        if self.module_mut(name).is_none() {
            self.modules
                .push(ModuleView::new(name.to_owned(), Some(dir.to_owned())));
        }
        let frame = self.frame;
        if let Some(m) = self.module_mut(name) {
            m.loaded = false;
            m.load_failed = Some(error.to_owned());
            m.last_error = Some(error.to_owned());
            m.record(frame, HistoryKind::Refused(error.to_owned()));
        }
    }

    /// A module listed as failed under `waited_as` loaded as `name` (its module name,
    /// which its package name stood for).
    pub fn waited_loaded(&mut self, waited_as: &str, name: &str) {
        if waited_as == name {
            return;
        }
        if self.module_mut(name).is_some() {
            self.modules.retain(|m| m.name != waited_as);
            self.selected = self.selected.min(self.modules.len().saturating_sub(1));
        } else if let Some(m) = self.module_mut(waited_as) {
            name.clone_into(&mut m.name);
        }
    }

    fn module_mut(&mut self, name: &str) -> Option<&mut ModuleView> {
        self.modules.iter_mut().find(|m| m.name == name)
    }

    fn take_event(&mut self, frame: u64, event: EngineEvent) {
        match event {
            EngineEvent::Loaded { module, .. } => {
                if self.module_mut(&module).is_none() {
                    self.modules.push(ModuleView::new(module.clone(), None));
                }
                if let Some(m) = self.module_mut(&module) {
                    m.loaded = true;
                    m.faulted = false;
                    m.load_failed = None;
                    m.record(frame, HistoryKind::Loaded);
                }
            }
            EngineEvent::Reloaded(reloaded) => {
                let Some(m) = self.module_mut(&reloaded.module) else {
                    return;
                };
                m.generation = reloaded.generation;
                m.faulted = false;
                let mut notes = vec![format!("state: {}", reloaded.state_summary())];
                notes.extend(reloaded.config_dropped.iter().map(|issue| {
                    format!("config field `{}` dropped: {}", issue.field, issue.message)
                }));
                m.record(
                    frame,
                    HistoryKind::Reloaded {
                        generation: reloaded.generation,
                        took: reloaded.took,
                        state_bytes: reloaded.state_bytes,
                        format: reloaded.format,
                        unmapped: reloaded.old_library == Unmapped::Yes,
                        notes,
                    },
                );
            }
            EngineEvent::ReloadRefused { module, error } => {
                if let Some(m) = self.module_mut(&module) {
                    m.last_error = Some(error.to_string());
                    m.record(frame, HistoryKind::Refused(error.to_string()));
                }
            }
            EngineEvent::Panicked { module, error, .. } => {
                if let Some(m) = self.module_mut(&module) {
                    m.panics += 1;
                    m.faulted = true;
                    m.last_error = Some(error.to_string());
                    m.record(frame, HistoryKind::Panicked(error.to_string()));
                }
            }
            EngineEvent::Unloaded { module, .. } => {
                if let Some(m) = self.module_mut(&module) {
                    m.loaded = false;
                    m.record(frame, HistoryKind::Unloaded);
                }
            }
            EngineEvent::BuildStarted { module } => {
                if let Some(m) = self.module_mut(&module) {
                    m.build = BuildState::Building {
                        since: Instant::now(),
                    };
                }
            }
            EngineEvent::BuildFinished {
                module,
                took,
                library_changed,
            } => {
                if let Some(m) = self.module_mut(&module) {
                    m.build = BuildState::Built {
                        took,
                        changed: library_changed,
                    };
                }
            }
            EngineEvent::BuildFailed { module, error } => {
                if let Some(m) = self.module_mut(&module) {
                    let text = error.to_string();
                    m.build = BuildState::Failed(text.clone());
                    m.record(frame, HistoryKind::BuildFailed(text));
                }
            }
            EngineEvent::Restored {
                module,
                age,
                fields,
                ..
            } => {
                if let Some(m) = self.module_mut(&module) {
                    let fields = fields.map_or_else(
                        || "no field report (the module's grove-sdk predates it)".to_owned(),
                        |report| report.to_string(),
                    );
                    m.record(frame, HistoryKind::Restored { age, fields });
                }
            }
            EngineEvent::SnapshotSetAside {
                module, problem, ..
            } => {
                if let Some(m) = self.module_mut(&module) {
                    m.record(frame, HistoryKind::SetAside(problem));
                }
            }
            EngineEvent::ConfigRefused { module, error, .. } => {
                if let Some(m) = self.module_mut(&module) {
                    m.record(frame, HistoryKind::ConfigRefused(error.to_string()));
                }
            }
            _ => {}
        }
    }

    /// Moves the selection by `by` rows, staying in the list.
    pub(crate) fn select_by(&mut self, by: isize) {
        if self.modules.is_empty() {
            return;
        }
        let last = self.modules.len() - 1;
        self.selected = self.selected.saturating_add_signed(by).min(last);
    }

    /// The frame times graph's data, oldest first, in microseconds.
    pub fn frame_times(&self) -> &VecDeque<f64> {
        &self.frame_us
    }

    /// The log pane's lines, when the dashboard shows logs.
    pub fn logs(&self) -> Option<&LogLines> {
        self.logs.as_ref()
    }
}
