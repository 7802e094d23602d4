//! [`RejectTable`]: the subscriptions with [`Backpressure::Reject`](grove::Backpressure),
//! which a publication checks as it is made, so that the publisher hears of a full queue
//! at once. Rebuilt between frames when subscriptions change; read by every module's
//! thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One reject subscription.
#[derive(Debug)]
pub(crate) struct RejectEntry {
    pub(crate) pattern: String,
    pub(crate) subscriber: Arc<str>,
    pub(crate) capacity: usize,
    /// The subscriber's queue length plus publications accepted since it was counted.
    pub(crate) queued: Arc<AtomicUsize>,
}

/// Every reject subscription.
#[derive(Debug, Default)]
pub(crate) struct RejectTable(pub(crate) Vec<RejectEntry>);

impl RejectTable {
    /// Takes a place for a message on `topic` in every matching reject queue; the first
    /// full one refuses it (and the places taken are given back).
    pub(crate) fn admit(&self, topic: &str) -> Result<(), Arc<str>> {
        let mut taken: Vec<&RejectEntry> = Vec::new();
        for entry in &self.0 {
            if !grove::bus::matches(&entry.pattern, topic) {
                continue;
            }
            let admitted = entry
                .queued
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < entry.capacity).then_some(n + 1)
                })
                .is_ok();
            if !admitted {
                for entry in taken {
                    entry.queued.fetch_sub(1, Ordering::AcqRel);
                }
                return Err(Arc::clone(&entry.subscriber));
            }
            taken.push(entry);
        }
        Ok(())
    }
}
