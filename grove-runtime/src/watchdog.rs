//! [`Watchdog`]: reports a module call that runs too long, while it runs.
//!
//! One thread per engine looks at every module's [`ModuleCalls`] a few times per limit. A
//! call seen running with the same token across looks is one call that has not returned;
//! once it has run for the limit, it is reported (a warning and
//! [`EngineEvent::CallTooLong`]), and again every limit after that, with the time so far.
//! The modules' calls pay nothing for this beyond marking themselves (see `ffi::calls`).
//!
//! It also watches the engine's stop flag: Ctrl-C while a module is stuck says which
//! module the engine is waiting for, instead of nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::events::{EngineEvent, Subscribers};
use crate::ffi::calls::{ModuleCalls, Running};

/// The default limit for one call into a module before it is reported.
pub const DEFAULT_CALL_LIMIT: Duration = Duration::from_secs(1);

/// The engine's watchdog: its thread and the modules it looks at.
#[derive(Debug)]
pub(crate) struct Watchdog {
    watched: Arc<Mutex<Vec<Weak<ModuleCalls>>>>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the thread. `limit`: how long a call may run before it is reported; `stop`:
    /// the engine's stop flag.
    pub(crate) fn start(
        limit: Duration,
        subscribers: Subscribers,
        stop_flag: Arc<AtomicBool>,
    ) -> Self {
        let watched = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = channel();
        let looker = Looker {
            limit,
            watched: Arc::clone(&watched),
            subscribers,
            stop_flag,
            seen: HashMap::new(),
            stop_reported: false,
        };
        let thread = std::thread::Builder::new()
            .name("grove-watchdog".into())
            .spawn(move || looker.run(&stopped))
            .map_err(|e| tracing::warn!(error = %e, "cannot start the watchdog; long module calls are not reported"))
            .ok();
        Self {
            watched,
            stop: Some(stop),
            thread,
        }
    }

    /// Looks at `calls` from now on, until it is dropped.
    pub(crate) fn watch(&self, calls: &Arc<ModuleCalls>) {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        watched.retain(|w| w.strong_count() > 0);
        watched.push(Arc::downgrade(calls));
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A call seen running: when it was first seen, and when it was last reported.
struct Seen {
    running: Running,
    since: Instant,
    reported: Option<Instant>,
}

/// The watchdog's thread.
struct Looker {
    limit: Duration,
    watched: Arc<Mutex<Vec<Weak<ModuleCalls>>>>,
    subscribers: Subscribers,
    stop_flag: Arc<AtomicBool>,
    /// By the address of the module's `ModuleCalls`.
    seen: HashMap<usize, Seen>,
    /// Whether the current stop request was already answered with what it waits for.
    stop_reported: bool,
}

impl Looker {
    fn run(mut self, stopped: &Receiver<()>) {
        let tick = (self.limit / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
        loop {
            match stopped.recv_timeout(tick) {
                Err(RecvTimeoutError::Timeout) => self.look(),
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn look(&mut self) {
        let now = Instant::now();
        let modules: Vec<Arc<ModuleCalls>> = self
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let mut still = HashMap::with_capacity(self.seen.len());
        let mut busy = Vec::new();
        for calls in &modules {
            let Some(running) = calls.running() else {
                continue;
            };
            let key = Arc::as_ptr(calls) as usize;
            let mut seen = match self.seen.remove(&key) {
                Some(seen) if seen.running == running => seen,
                _ => Seen {
                    running,
                    since: now,
                    reported: None,
                },
            };
            let so_far = now - seen.since;
            busy.push((calls.name().to_owned(), running, so_far));
            let due = seen
                .reported
                .map_or(so_far >= self.limit, |at| now - at >= self.limit);
            if due {
                seen.reported = Some(now);
                tracing::warn!(
                    module = %calls.name(),
                    call = %running.call,
                    running_ms = so_far.as_millis() as u64,
                    limit_ms = self.limit.as_millis() as u64,
                    "module call is taking too long; the engine waits for it"
                );
                self.subscribers.send(EngineEvent::CallTooLong {
                    module: calls.name().to_owned(),
                    call: running.call,
                    running: so_far,
                });
            }
            still.insert(key, seen);
        }
        self.seen = still;
        self.answer_stop(&busy);
    }

    /// On a stop request (Ctrl-C) while a module call runs: say what the engine waits for.
    fn answer_stop(&mut self, busy: &[(String, Running, Duration)]) {
        if !self.stop_flag.load(Ordering::SeqCst) {
            self.stop_reported = false;
            return;
        }
        if self.stop_reported {
            return;
        }
        // A call that has run for a while: the stop is waiting on it.
        if let Some((module, running, so_far)) = busy
            .iter()
            .filter(|(_, _, so_far)| *so_far >= Duration::from_millis(100))
            .max_by_key(|(_, _, so_far)| *so_far)
        {
            self.stop_reported = true;
            tracing::warn!(
                module = %module,
                call = %running.call,
                running_ms = so_far.as_millis() as u64,
                "stopping: waiting for module `{module}` to return from {}; press Ctrl-C again to exit now",
                running.call
            );
            eprintln!(
                "grove: stopping, but module `{module}` has been in {} for {:.1} s; the engine \
                 stops when it returns. Press Ctrl-C again to exit now.",
                running.call,
                so_far.as_secs_f64()
            );
        }
    }
}
