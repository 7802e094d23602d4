//! [`EngineEvent`]: what happened to the modules, for hosts that want to react (a status
//! bar, a test, an editor integration).

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::Error;
use crate::loaded::Reloaded;

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
    /// A watched crate failed to build; the running version is kept.
    BuildFailed {
        /// The module built from it.
        module: String,
        /// The compiler's diagnostics.
        error: Error,
    },
}

/// The engine's subscribers.
#[derive(Debug, Default)]
pub(crate) struct Subscribers(Vec<Sender<EngineEvent>>);

impl Subscribers {
    pub(crate) fn subscribe(&mut self) -> Receiver<EngineEvent> {
        let (tx, rx) = channel();
        self.0.push(tx);
        rx
    }

    /// Sends `event` to every live subscriber, forgetting the ones that hung up.
    pub(crate) fn send(&mut self, event: EngineEvent) {
        self.0.retain(|tx| tx.send(event.clone()).is_ok());
    }
}
