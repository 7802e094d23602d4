//! [`EngineEvent`]: what happened to the modules, for hosts that want to react (a status
//! bar, a test, an editor integration).

use std::fmt;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grove::{Health, HealthStatus};

use crate::Unmapped;
use crate::config::ConfigOrigin;
use crate::console::Console;
use crate::loaded::Reloaded;
use crate::{Call, Error};

/// Something that happened to a module.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EngineEvent {
    /// A module was added.
    Loaded {
        /// The module.
        module: String,
        /// Its library, or `None` for a static module.
        path: Option<PathBuf>,
    },
    /// A new version took over, with its state.
    Reloaded(Reloaded),
    /// A module was removed ([`Engine::unload`](crate::Engine::unload)); its `shutdown` ran.
    Unloaded {
        /// The module.
        module: String,
        /// How its library left memory; `None` for a static module.
        old_library: Option<Unmapped>,
    },
    /// A new version was refused; the old one keeps running with its state.
    ReloadRefused {
        /// The module.
        module: String,
        /// Why.
        error: Error,
    },
    /// The module panicked in `process`; it is skipped until a new version loads.
    Panicked {
        /// The module.
        module: String,
        /// The frame it panicked in.
        frame: u64,
        /// The panic.
        error: Error,
    },
    /// A watched crate started building.
    BuildStarted {
        /// The module built from it.
        module: String,
    },
    /// A watched crate was rebuilt. When its library changed, the new version is swapped
    /// in from its file (a [`EngineEvent::Reloaded`] or [`EngineEvent::ReloadRefused`]
    /// follows, before or after this); otherwise there is nothing to reload.
    BuildFinished {
        /// The module built from it.
        module: String,
        /// How long cargo ran.
        took: Duration,
        /// Whether the library differs from the one the build before made (an edit of a
        /// comment, or a file saved unchanged, usually leaves it as it was).
        library_changed: bool,
    },
    /// A watched crate failed to build; the running version is kept.
    BuildFailed {
        /// The module built from it.
        module: String,
        /// The compiler's diagnostics.
        error: Error,
    },
    /// A call into a module has been running longer than the engine's call limit (see
    /// [`EngineBuilder::call_limit`](crate::EngineBuilder::call_limit)); sent while it
    /// runs, and again every limit after that.
    CallTooLong {
        /// The module.
        module: String,
        /// The call.
        call: Call,
        /// How long it has run so far.
        running: Duration,
    },
    /// The file at a watched library path has stayed something that is not a module
    /// library (empty, text, truncated) for a couple of seconds: not a build in progress.
    /// The running version keeps going.
    LibraryInvalid {
        /// The module whose path it is.
        module: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A frame took far longer than its budget (four periods at the target rate).
    SlowFrame {
        /// The frame.
        frame: u64,
        /// How long it took.
        took: Duration,
        /// The frame period at the target rate.
        budget: Duration,
        /// The module that took longest in it, and how long, when one was timed.
        slowest: Option<(String, Duration)>,
    },
    /// A module took a new config (from its file, from code, or its defaults at load).
    Configured {
        /// The module.
        module: String,
        /// Where the config came from.
        origin: ConfigOrigin,
    },
    /// A config was refused; the one in force is unchanged. The error names the file, line
    /// and field.
    ConfigRefused {
        /// The module.
        module: String,
        /// Why.
        error: Error,
    },
    /// Something went wrong on the message bus for a module: a bad topic or pattern, a
    /// payload that could not be encoded, a message rejected by a full queue, or one it
    /// could not decode. Reported once per frame per module, topic and problem.
    MessageProblem {
        /// The module.
        module: String,
        /// The topic (or pattern).
        topic: String,
        /// What went wrong.
        problem: String,
    },
    /// A module that loaded took its state from its snapshot.
    Restored {
        /// The module.
        module: String,
        /// The snapshot file.
        path: PathBuf,
        /// How old the state is.
        age: Duration,
        /// What became of its fields in this version (as in a reload); `None` for a module
        /// built with an older grove-sdk, which does not report.
        fields: Option<grove::state::FieldReport>,
    },
    /// A module's snapshot could not be used (a damaged, foreign or newer file, or a state
    /// this version cannot read): it was renamed aside, never deleted, and the module
    /// started from its default.
    SnapshotSetAside {
        /// The module.
        module: String,
        /// The file.
        path: PathBuf,
        /// Where it was moved; `None` when it could not be moved.
        moved_to: Option<PathBuf>,
        /// Why it was not used.
        problem: String,
    },
    /// A snapshot could not be taken or written (a full disk, say); frames go on and the
    /// next one is tried as usual.
    SnapshotFailed {
        /// The module.
        module: String,
        /// Why.
        error: String,
    },
    /// A module's health status changed (or its first report is not healthy): see
    /// [`Module::health`](grove::Module::health).
    HealthChanged {
        /// The module.
        module: String,
        /// The status before; `None` for its first report.
        previous: Option<HealthStatus>,
        /// The new report.
        health: Health,
    },
}

impl fmt::Display for EngineEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineEvent::Loaded { module, path } => match path {
                Some(path) => write!(f, "module `{module}` loaded from {}", path.display()),
                None => write!(f, "module `{module}` added (linked statically)"),
            },
            EngineEvent::Reloaded(r) => write!(
                f,
                "module `{}` reloaded: generation {}, {:.2} ms, {} bytes of state ({}); {}",
                r.module,
                r.generation,
                r.took.as_secs_f64() * 1e3,
                r.state_bytes,
                r.format,
                r.state_summary()
            ),
            EngineEvent::Unloaded {
                module,
                old_library,
            } => match old_library {
                Some(unmapped) => write!(f, "module `{module}` unloaded (library: {unmapped:?})"),
                None => write!(f, "module `{module}` unloaded"),
            },
            EngineEvent::ReloadRefused { error, .. } => write!(f, "{error}"),
            EngineEvent::Panicked {
                module,
                frame,
                error,
            } => match error {
                // The error names the module too: said once.
                crate::Error::Panicked { call, message, .. } => write!(
                    f,
                    "module `{module}` panicked in frame {frame}, in {call}: {message}; \
                     skipped until it is reloaded"
                ),
                other => write!(
                    f,
                    "module `{module}` failed in frame {frame}: {other}; skipped until it is \
                     reloaded"
                ),
            },
            EngineEvent::BuildStarted { module } => write!(f, "module `{module}`: rebuilding"),
            EngineEvent::BuildFinished {
                module,
                took,
                library_changed,
            } => {
                write!(
                    f,
                    "module `{module}`: rebuilt in {:.2} s",
                    took.as_secs_f64()
                )?;
                if !library_changed {
                    f.write_str(", the library is unchanged: nothing to reload")?;
                }
                Ok(())
            }
            EngineEvent::BuildFailed { module, error } => {
                write!(f, "module `{module}`: build failed: {error}")
            }
            EngineEvent::CallTooLong {
                module,
                call,
                running,
            } => write!(
                f,
                "module `{module}` has been in {call} for {:.1} s",
                running.as_secs_f64()
            ),
            EngineEvent::LibraryInvalid {
                module,
                path,
                reason,
            } => write!(
                f,
                "{} (module `{module}`) is not a module library: {reason}",
                path.display()
            ),
            EngineEvent::SlowFrame {
                frame,
                took,
                budget,
                slowest,
            } => {
                write!(
                    f,
                    "frame {frame} took {:.1} ms (budget {:.1} ms)",
                    took.as_secs_f64() * 1e3,
                    budget.as_secs_f64() * 1e3
                )?;
                match slowest {
                    Some((module, took)) => write!(
                        f,
                        "; slowest module `{module}`: {:.1} ms",
                        took.as_secs_f64() * 1e3
                    ),
                    None => Ok(()),
                }
            }
            EngineEvent::MessageProblem {
                module,
                topic,
                problem,
            } => write!(f, "module `{module}`, topic `{topic}`: {problem}"),
            EngineEvent::Restored {
                module,
                path,
                age,
                fields,
            } => {
                write!(
                    f,
                    "module `{module}` resumed from its snapshot {} ({:.1} s old)",
                    path.display(),
                    age.as_secs_f64()
                )?;
                match fields {
                    Some(report) if !report.is_unchanged() => write!(f, "; {report}"),
                    _ => Ok(()),
                }
            }
            EngineEvent::SnapshotSetAside {
                module,
                path,
                moved_to,
                problem,
            } => {
                write!(
                    f,
                    "snapshot {} of module `{module}` not used: {problem}",
                    path.display()
                )?;
                match moved_to {
                    Some(to) => write!(f, "; set aside as {}", to.display()),
                    None => Ok(()),
                }
            }
            EngineEvent::SnapshotFailed { module, error } => {
                write!(f, "snapshot of module `{module}` failed: {error}")
            }
            EngineEvent::Configured { module, origin } => {
                write!(f, "module `{module}` configured from {origin}")
            }
            EngineEvent::ConfigRefused { error, .. } => write!(f, "{error}"),
            EngineEvent::HealthChanged {
                module,
                previous,
                health,
            } => match previous {
                Some(previous) => write!(f, "module `{module}` went from {previous} to {health}"),
                None => write!(f, "module `{module}` reports {health}"),
            },
        }
    }
}

/// The engine's subscribers, shared with the watchdog, which reports while the engine's
/// thread is busy; and its console, which prints every event while `tracing` is silent.
#[derive(Debug, Default, Clone)]
pub(crate) struct Subscribers {
    senders: Arc<Mutex<Vec<Sender<EngineEvent>>>>,
    console: Console,
}

impl Subscribers {
    pub(crate) fn new(console: Console) -> Self {
        Self {
            senders: Arc::default(),
            console,
        }
    }

    pub(crate) fn console(&self) -> Console {
        self.console
    }

    pub(crate) fn subscribe(&self) -> Receiver<EngineEvent> {
        let (tx, rx) = channel();
        self.senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }

    /// Sends `event` to every live subscriber, forgetting the ones that hung up.
    pub(crate) fn send(&self, event: EngineEvent) {
        self.console.event(&event);
        self.senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|tx| tx.send(event.clone()).is_ok());
    }
}
