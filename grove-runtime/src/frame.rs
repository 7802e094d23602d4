//! Frame pacing: a steady frame rate from absolute deadlines.
//!
//! Frame `n` starts at `origin + n * period`, not at "previous start + period", so timing
//! error never accumulates: a late frame is followed by a shorter wait. The wait sleeps
//! until shortly before the deadline, then spins the rest: sleeping alone overshoots by the
//! scheduler's timer slack (tens to hundreds of microseconds).
//!
//! When the engine falls far behind (a debugger pause, a slow reload), the schedule is
//! re-anchored instead of running a burst of back-to-back frames to catch up.

use std::time::{Duration, Instant};

/// How long before a deadline sleeping stops and spinning starts.
const SPIN: Duration = Duration::from_micros(1_000);

/// How many periods late a frame may start before the schedule is re-anchored.
const MAX_LAG_PERIODS: u32 = 4;

/// Keeps frames on a fixed schedule.
#[derive(Debug, Clone)]
pub(crate) struct FramePacer {
    period: Option<Duration>,
    origin: Instant,
    /// Frames scheduled since `origin`.
    scheduled: u64,
}

impl FramePacer {
    /// A pacer at `fps` frames per second; 0 (or a non-finite value) is unpaced.
    pub(crate) fn new(fps: f64) -> Self {
        Self {
            period: period_of(fps),
            origin: Instant::now(),
            scheduled: 0,
        }
    }

    /// Changes the rate; the schedule restarts from now.
    pub(crate) fn set_fps(&mut self, fps: f64) {
        *self = Self::new(fps);
    }

    /// The period, or `None` when unpaced.
    pub(crate) fn period(&self) -> Option<Duration> {
        self.period
    }

    /// Waits for the next frame's deadline and returns the instant the frame starts.
    pub(crate) fn wait(&mut self) -> Instant {
        let Some(period) = self.period else {
            return Instant::now();
        };
        if self.scheduled == 0 {
            // The first frame starts now; the schedule is anchored on it.
            self.origin = Instant::now();
            self.scheduled = 1;
            return self.origin;
        }
        let deadline = self.origin + nanos(period.as_nanos() * u128::from(self.scheduled));
        let mut now = Instant::now();
        if now > deadline + period * MAX_LAG_PERIODS {
            tracing::debug!(
                late_ms = (now - deadline).as_secs_f64() * 1e3,
                "frame far behind schedule: re-anchoring"
            );
            self.origin = now;
            self.scheduled = 1;
            return now;
        }
        if deadline > now + SPIN {
            std::thread::sleep(deadline - now - SPIN);
        }
        while {
            now = Instant::now();
            now < deadline
        } {
            std::hint::spin_loop();
        }
        self.scheduled += 1;
        now
    }
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

fn period_of(fps: f64) -> Option<Duration> {
    (fps.is_finite() && fps > 0.0).then(|| Duration::from_secs_f64(1.0 / fps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fps_is_unpaced() {
        assert_eq!(FramePacer::new(0.0).period(), None);
        assert_eq!(FramePacer::new(f64::NAN).period(), None);
        assert_eq!(
            FramePacer::new(50.0).period(),
            Some(Duration::from_millis(20))
        );
    }

    #[test]
    fn frames_never_start_before_their_deadline() {
        let mut pacer = FramePacer::new(500.0);
        let first = pacer.wait();
        for n in 1..20u32 {
            let start = pacer.wait();
            assert!(
                start >= first + Duration::from_millis(2) * n,
                "frame {n} early"
            );
        }
    }
}
