//! [`HealthReport`]: how every module is doing, in one serde-serializable value a host can
//! show or serve as JSON. Each module's own report ([`Module::health`](grove::Module::health))
//! next to the engine's figures for it.

use std::path::PathBuf;
use std::time::Instant;

use grove::{Health, HealthStatus};
use serde::{Deserialize, Serialize};

/// How often the engine asks a module for its health between two calls to
/// [`Engine::health`](crate::Engine::health).
pub(crate) const POLL_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How every module is doing: [`Engine::health`](crate::Engine::health).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// The number of the next frame to run.
    pub frame: u64,
    /// One entry per module, in the order they run.
    pub modules: Vec<ModuleHealth>,
}

impl HealthReport {
    /// The entry of module `name`.
    pub fn module(&self, name: &str) -> Option<&ModuleHealth> {
        self.modules.iter().find(|m| m.module == name)
    }

    /// The worst status among the modules (a faulted module counts as failed); healthy
    /// when there are none.
    pub fn worst(&self) -> HealthStatus {
        let rank = |s: HealthStatus| match s {
            HealthStatus::Healthy => 0,
            HealthStatus::Degraded => 1,
            HealthStatus::Failed => 2,
        };
        self.modules
            .iter()
            .map(ModuleHealth::status)
            .max_by_key(|s| rank(*s))
            .unwrap_or(HealthStatus::Healthy)
    }
}

/// How one module is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModuleHealth {
    /// The module.
    pub module: String,
    /// How it is doing, all told: failed when faulted, else what it last reported
    /// (healthy before it first reports). A health hook that panics reports failed.
    pub status: HealthStatus,
    /// The library the running version came from; `None` for a static module.
    pub library: Option<PathBuf>,
    /// The generation running (1 after loading, +1 per reload; 0 for a static module).
    pub generation: u64,
    /// The module's own report, as it last gave it; `None` before it was first asked, or
    /// for a library built before the hook existed.
    pub report: Option<Health>,
    /// Whether a panic stopped it: it is skipped, its state kept, until a reload.
    pub faulted: bool,
    /// The last thing that went wrong with it: a panic, a refused reload or config, a
    /// failed health call. Stays until something else goes wrong.
    pub last_error: Option<String>,
    /// Frames it ran.
    pub frames: u64,
    /// Median of its recent `process` times, in microseconds.
    pub process_p50_us: f64,
    /// 99th percentile of its recent `process` times, in microseconds.
    pub process_p99_us: f64,
    /// Its reloads that took over.
    pub reloads: u64,
    /// Its reloads that were refused.
    pub refused_reloads: u64,
    /// Its configs that were refused.
    pub refused_configs: u64,
    /// Its figures on the message bus: queue depth, published, delivered, dropped,
    /// rejected, undecodable.
    pub messages: crate::bus::ModuleBusStats,
}

impl ModuleHealth {
    /// The module's status: failed when faulted, else what it last reported (healthy when
    /// it has not reported).
    pub fn status(&self) -> HealthStatus {
        self.status
    }
}

/// What the engine keeps of a module's health between reports.
#[derive(Debug, Default)]
pub(crate) struct HealthTrack {
    pub(crate) report: Option<Health>,
    pub(crate) polled: Option<Instant>,
    pub(crate) last_error: Option<String>,
    pub(crate) refused_configs: u64,
}

impl HealthTrack {
    /// Whether it is time to ask again.
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.polled
            .is_none_or(|at| now.duration_since(at) >= POLL_EVERY)
    }

    /// Records a new report; returns the previous status when the status changed (`None`
    /// inside for the first report).
    pub(crate) fn record(&mut self, report: Health) -> Option<Option<HealthStatus>> {
        let before = self.report.as_ref().map(Health::status);
        let changed = before != Some(report.status());
        self.report = Some(report);
        changed.then_some(before)
    }
}
