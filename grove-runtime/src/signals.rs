//! Ctrl-C and SIGTERM stop [`Engine::run`](crate::Engine::run) gracefully: the frame in
//! progress finishes and every module's `shutdown` runs. A second Ctrl-C while shutting down
//! exits at once.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::{SigId, flag};

use crate::error::{Error, Result};

/// Signal handlers setting the engine's stop flag while it runs; removed on drop, which
/// restores the default behaviour.
pub(crate) struct StopOnSignal(Vec<SigId>);

impl StopOnSignal {
    pub(crate) fn install(stop: &Arc<AtomicBool>) -> Result<Self> {
        let mut ids = Vec::new();
        let mut register = |result: std::io::Result<SigId>| {
            result
                .map(|id| ids.push(id))
                .map_err(|source| Error::Signal {
                    source: Arc::new(source),
                })
        };
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag as the previous signal left it: the
            // second signal exits (130 = killed by SIGINT, by shell convention).
            register(flag::register_conditional_shutdown(
                signal,
                130,
                Arc::clone(stop),
            ))?;
            register(flag::register(signal, Arc::clone(stop)))?;
        }
        Ok(Self(ids))
    }
}

impl Drop for StopOnSignal {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
