//! The benchmark fixture: a light module whose state holds `GROVE_BENCH_STATE_BYTES`
//! bytes (read once, in the first `init`), so reloads can be timed against state size.
//!
//! With the `logs` feature (a variant of its own, so the others' code is untouched),
//! `process` also emits `GROVE_BENCH_LOG_EVENTS` `tracing` events (read in every `init`)
//! at the level `GROVE_BENCH_LOG_LEVEL` names (`debug`, the default, or `info`), so the
//! cost of a module's event can be timed.

use grove::prelude::*;

/// Which build this is; v2 only differs in code.
pub const VERSION: u64 = if cfg!(feature = "v2") { 2 } else { 1 };

#[grove::module(name = "bench")]
#[derive(Default)]
pub struct Bench {
    /// Frames run.
    pub frames: u64,
    /// The payload carried across reloads.
    pub data: Vec<u64>,
    /// `tracing` events per `process` (not state: read from the environment in `init`).
    #[cfg(feature = "logs")]
    #[serde(skip)]
    pub log_events: u64,
    /// Whether those events are `info!` rather than `debug!`.
    #[cfg(feature = "logs")]
    #[serde(skip)]
    pub log_info: bool,
}

/// Emits `n` events, `debug!` or `info!`, from one callsite each. The host calls it too:
/// the same code, with the host's own `tracing`.
#[inline(never)]
pub fn emit_events(n: u64, info: bool) {
    if info {
        for i in 0..n {
            grove::tracing::info!(i, "bench event");
        }
    } else {
        for i in 0..n {
            grove::tracing::debug!(i, "bench event");
        }
    }
}

impl Module for Bench {
    fn init(&mut self, _ctx: &mut Context) {
        if self.data.is_empty() {
            let bytes: usize = std::env::var("GROVE_BENCH_STATE_BYTES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            self.data = (0..bytes / 8)
                .map(|i| (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
        }
        #[cfg(feature = "logs")]
        {
            self.log_events = std::env::var("GROVE_BENCH_LOG_EVENTS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            self.log_info = std::env::var("GROVE_BENCH_LOG_LEVEL").is_ok_and(|v| v == "info");
        }
    }

    fn process(&mut self, _ctx: &mut Context) {
        self.frames = std::hint::black_box(self.frames + VERSION);
        #[cfg(feature = "logs")]
        emit_events(self.log_events, self.log_info);
    }
}
