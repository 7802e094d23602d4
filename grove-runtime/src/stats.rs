//! Engine statistics: achieved frame rate, frame-time percentiles, per-module process time,
//! reloads.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many recent samples percentiles are computed over.
const WINDOW: usize = 1024;

/// A bounded window of recent durations.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window(VecDeque<Duration>);

impl Window {
    pub(crate) fn push(&mut self, d: Duration) {
        if self.0.len() == WINDOW {
            self.0.pop_front();
        }
        self.0.push_back(d);
    }

    fn summary(&self) -> Percentiles {
        let mut sorted: Vec<Duration> = self.0.iter().copied().collect();
        sorted.sort_unstable();
        let at = |q: f64| {
            if sorted.is_empty() {
                Duration::ZERO
            } else {
                sorted[((sorted.len() - 1) as f64 * q).round() as usize]
            }
        };
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            max: sorted.last().copied().unwrap_or_default(),
            samples: sorted.len(),
        }
    }
}

/// Percentiles of a window of durations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
    /// How many samples these were computed from.
    pub samples: usize,
}

/// Process-time figures for one module. With up to 64 modules in the engine every frame
/// is timed; with more, `last`, `mean` and `max` come from a rotating sample of frames.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ModuleTiming {
    /// The module.
    pub name: String,
    /// Frames it ran.
    pub frames: u64,
    /// Its last `process` call.
    pub last: Duration,
    /// Mean `process` time.
    pub mean: Duration,
    /// Its longest `process` call.
    pub max: Duration,
    /// The generation running (0 for a static module).
    pub generation: u64,
    /// Whether it is faulted (skipped until reloaded).
    pub faulted: bool,
    /// Percentiles of its recent timed `process` calls.
    pub process: Percentiles,
    /// Its reloads that took over.
    pub reloads: u64,
    /// Its reloads that were refused.
    pub refused_reloads: u64,
}

/// How many modules a frame times at most: reading the clock twice per module costs about
/// as much as the engine's whole per-module work, so with more modules each is timed on a
/// rotating share of frames.
pub(crate) const TIMED_PER_FRAME: usize = 64;

/// Per-module accumulator.
#[derive(Debug, Clone)]
pub(crate) struct ModuleClock {
    pub(crate) frames: u64,
    /// Frames that were timed.
    timed: u64,
    pub(crate) last: Duration,
    pub(crate) total: Duration,
    pub(crate) max: Duration,
    /// The module is timed one frame in `stride`.
    stride: u64,
    /// Recent timed calls, for percentiles.
    recent: Window,
    pub(crate) reloads: u64,
    pub(crate) refused_reloads: u64,
}

impl Default for ModuleClock {
    fn default() -> Self {
        Self {
            frames: 0,
            timed: 0,
            last: Duration::ZERO,
            total: Duration::ZERO,
            max: Duration::ZERO,
            stride: 1,
            recent: Window::default(),
            reloads: 0,
            refused_reloads: 0,
        }
    }
}

impl ModuleClock {
    /// Sets how often the module is timed, for an engine holding `modules` modules.
    pub(crate) fn set_share(&mut self, modules: usize) {
        self.stride = (modules / TIMED_PER_FRAME).max(1) as u64;
    }

    /// Whether frame `frame` of the module with id `id` is timed. Spread by id, so each
    /// frame times about the same number of modules.
    pub(crate) fn times(&self, frame: u64, id: u64) -> bool {
        self.stride == 1 || (frame + id).is_multiple_of(self.stride)
    }

    /// A frame that was timed.
    pub(crate) fn record(&mut self, took: Duration) {
        self.frames += 1;
        self.timed += 1;
        self.last = took;
        self.total += took;
        self.max = self.max.max(took);
        self.recent.push(took);
    }

    /// A frame that ran untimed.
    pub(crate) fn count(&mut self) {
        self.frames += 1;
    }

    pub(crate) fn timing(&self, name: &str, generation: u64, faulted: bool) -> ModuleTiming {
        ModuleTiming {
            name: name.to_owned(),
            frames: self.frames,
            last: self.last,
            mean: self
                .total
                .checked_div(self.timed.max(1) as u32)
                .unwrap_or_default(),
            max: self.max,
            generation,
            faulted,
            process: self.recent.summary(),
            reloads: self.reloads,
            refused_reloads: self.refused_reloads,
        }
    }
}

/// Frame and reload figures, accumulated by the engine.
#[derive(Debug, Clone, Default)]
pub(crate) struct FrameClock {
    pub(crate) frames: u64,
    first_start: Option<Instant>,
    last_start: Option<Instant>,
    intervals: Window,
    frame_times: Window,
    pub(crate) reloads: u64,
    pub(crate) refused: u64,
    reload_times: Window,
    last_reload: Option<Duration>,
    last_frame: Option<Duration>,
}

impl FrameClock {
    pub(crate) fn frame_started(&mut self, start: Instant) {
        if let Some(last) = self.last_start {
            self.intervals.push(start - last);
        }
        self.first_start.get_or_insert(start);
        self.last_start = Some(start);
    }

    pub(crate) fn frame_finished(&mut self, took: Duration) {
        self.frames += 1;
        self.frame_times.push(took);
        self.last_frame = Some(took);
    }

    pub(crate) fn last_frame(&self) -> Option<Duration> {
        self.last_frame
    }

    pub(crate) fn reloaded(&mut self, took: Duration) {
        self.reloads += 1;
        self.reload_times.push(took);
        self.last_reload = Some(took);
    }

    pub(crate) fn snapshot(&self, modules: Vec<ModuleTiming>) -> Stats {
        let intervals = self.intervals.summary();
        let window_fps = {
            let total: Duration = self.intervals.0.iter().sum();
            if total.is_zero() {
                0.0
            } else {
                self.intervals.0.len() as f64 / total.as_secs_f64()
            }
        };
        let mean_fps = match (self.first_start, self.last_start) {
            (Some(first), Some(last)) if last > first => {
                (self.frames.saturating_sub(1)) as f64 / (last - first).as_secs_f64()
            }
            _ => 0.0,
        };
        Stats {
            frames: self.frames,
            mean_fps,
            recent_fps: window_fps,
            intervals,
            frame_times: self.frame_times.summary(),
            last_frame: self.last_frame,
            modules,
            reloads: self.reloads,
            refused_reloads: self.refused,
            reload_times: self.reload_times.summary(),
            last_reload: self.last_reload,
            bus: Default::default(),
        }
    }
}

/// A snapshot of the engine's figures.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Frames run.
    pub frames: u64,
    /// Frames per second from the first frame to the last.
    pub mean_fps: f64,
    /// Frames per second over the recent window.
    pub recent_fps: f64,
    /// Start-to-start frame intervals over the recent window.
    pub intervals: Percentiles,
    /// Time spent working in each frame (reloads and modules), recent window.
    pub frame_times: Percentiles,
    /// Time spent working in the last frame; `None` before the first.
    pub last_frame: Option<Duration>,
    /// Per module, in registration order.
    pub modules: Vec<ModuleTiming>,
    /// Successful reloads.
    pub reloads: u64,
    /// Refused reloads (the old version kept running).
    pub refused_reloads: u64,
    /// Reload durations, recent window.
    pub reload_times: Percentiles,
    /// The last successful reload's duration.
    pub last_reload: Option<Duration>,
    /// The message bus: per topic and per module.
    pub bus: crate::bus::BusStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_window() {
        let mut w = Window::default();
        for ms in 1..=100 {
            w.push(Duration::from_millis(ms));
        }
        let p = w.summary();
        assert_eq!(p.max, Duration::from_millis(100));
        assert_eq!(p.p50, Duration::from_millis(51));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.samples, 100);
    }

    #[test]
    fn window_is_bounded() {
        let mut w = Window::default();
        for _ in 0..(WINDOW + 10) {
            w.push(Duration::from_millis(1));
        }
        assert_eq!(w.summary().samples, WINDOW);
    }
}
