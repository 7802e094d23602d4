//! grove's own lines on stderr, for a host that has not set up `tracing`.
//!
//! grove reports through `tracing`, which shows nothing until the host installs a
//! subscriber. A host that has not (the three-line host of the README) would see no build,
//! no compile error, no reload and no panic. So while no `tracing` dispatcher would record
//! anything on the calling thread (none set globally, none scoped), the engine prints its
//! events as short lines (`grove: ...`), and a loaded module's log events at `INFO` and
//! above as ` INFO module: message field=value`. The moment the host sets a subscriber,
//! globally or for the thread, the lines stop and `tracing` carries everything; a host can
//! also turn them off ([`EngineBuilder::console`](crate::EngineBuilder::console)).
//!
//! Lines go through `eprint!`, so a test harness captures them like any other output.

use std::fmt;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing_core::Level;
use tracing_core::subscriber::NoSubscriber;

use crate::error::Error;
use crate::events::EngineEvent;

/// Whether an engine that prints its lines was built: then loaded modules' log events are
/// printed too, when nothing else would show them.
static MODULE_LOGS: AtomicBool = AtomicBool::new(false);

/// The most verbose module log level printed.
pub(crate) const MODULE_LEVEL: Level = Level::INFO;

/// Whether `tracing` records nothing on this thread because the host never said what it
/// wants: no global dispatcher is set and no scoped one is in force. A host that set one,
/// even one that records nothing, has made its choice.
pub(crate) fn tracing_is_silent() -> bool {
    use tracing_core::dispatcher::{self, Dispatch};
    if !dispatcher::has_been_set() {
        return true;
    }
    // `has_been_set` stays true once any dispatcher, scoped too, was set. The dispatcher
    // that stands in when none is set is one static `NoSubscriber`: tell it from a host's
    // own by address.
    let unset = Dispatch::none();
    let unset = unset.downcast_ref::<NoSubscriber>().map(std::ptr::from_ref);
    // The tagger of static modules' events stands in front of the host's dispatcher while
    // modules are called: look behind it.
    crate::static_log::in_force(|d| {
        d.downcast_ref::<NoSubscriber>().map(std::ptr::from_ref) == unset
    })
}

/// Whether an engine that prints module log events was built.
pub(crate) fn module_logs_enabled() -> bool {
    MODULE_LOGS.load(Ordering::Relaxed)
}

/// Whether a loaded module's log events are printed here, now, on this thread.
pub(crate) fn module_logs_shown() -> bool {
    MODULE_LOGS.load(Ordering::Relaxed) && tracing_is_silent()
}

/// Prints one line of a loaded module's log event: level, module, message, fields.
pub(crate) fn module_event(level: Level, module: &str, fields: &[(&str, &dyn fmt::Display)]) {
    use std::fmt::Write as _;
    let mut line = format!("{level:>5} {module}:");
    if let Some((_, message)) = fields.iter().find(|(name, _)| *name == "message") {
        let _ = write!(line, " {message}");
    }
    for (name, value) in fields.iter().filter(|(name, _)| *name != "message") {
        let _ = write!(line, " {name}={value}");
    }
    eprintln!("{line}");
}

/// The engine's side: whether it prints, and what.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Console {
    enabled: bool,
}

impl Console {
    /// A console that prints while `tracing` is silent (`enabled`), or never.
    pub(crate) fn new(enabled: bool) -> Self {
        if enabled && !MODULE_LOGS.swap(true, Ordering::Relaxed) {
            // Static modules' events at `INFO` must now pass `tracing`'s level check
            // (`crate::static_log` says so in its level hint, asked again here).
            tracing_core::callsite::rebuild_interest_cache();
        }
        Self { enabled }
    }

    /// Whether a line printed now, on this thread, would be shown.
    pub(crate) fn active(self) -> bool {
        self.enabled && tracing_is_silent()
    }

    /// Prints `grove: <line>` if the console is active.
    pub(crate) fn line(self, line: fmt::Arguments<'_>) {
        if self.active() {
            eprintln!("grove: {line}");
        }
    }

    /// Prints an engine event if the console is active; a failed build with every
    /// diagnostic, as rustc printed them.
    pub(crate) fn event(self, event: &EngineEvent) {
        if !self.active() {
            return;
        }
        match event {
            EngineEvent::BuildFailed {
                module,
                error: Error::Build { source, .. },
            } if source.rendered().is_some() => {
                let rendered = source.rendered().unwrap_or_default();
                eprintln!(
                    "grove: module `{module}`: build failed, the running version keeps going:\n{rendered}"
                );
            }
            event => eprintln!("grove: {event}"),
        }
    }

    /// A progress report for a build of crate `krate`.
    pub(crate) fn progress(self, krate: &str) -> BuildProgress {
        BuildProgress {
            console: self,
            krate: krate.to_owned(),
            terminal: std::io::stderr().is_terminal(),
            last: Mutex::new((None, false)),
        }
    }
}

/// Reports a build's progress (units built out of the total, as cargo counts them): a line
/// updated in place on a terminal, otherwise a line at most every [`BuildProgress::EVERY`];
/// a `tracing` event as often.
#[derive(Debug)]
pub(crate) struct BuildProgress {
    console: Console,
    krate: String,
    terminal: bool,
    /// When the last report was made, and whether a line is open on a terminal.
    last: Mutex<(Option<Instant>, bool)>,
}

impl BuildProgress {
    const EVERY: Duration = Duration::from_secs(1);

    /// `done` of `total` units are built.
    pub(crate) fn update(&self, done: usize, total: usize) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let (at, open) = &mut *last;
        let due = at.is_none_or(|at| at.elapsed() >= Self::EVERY);
        let active = self.console.active();
        if active && self.terminal {
            eprint!(
                "\rgrove: building {}: {done}/{total} crates\x1b[K",
                self.krate
            );
            *open = true;
        } else if active && due {
            eprintln!("grove: building {}: {done}/{total} crates", self.krate);
        }
        if due {
            *at = Some(Instant::now());
            tracing::info!(krate = %self.krate, done, total, "building");
        }
    }

    /// The build is over: ends a line left open on a terminal.
    pub(crate) fn finish(&self) {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.1 && self.console.active() {
            eprintln!();
        }
    }
}
