//! [`ModuleBus`]: a module's end of the bus, held by the engine with the module (so it
//! outlives every reload): its subscriptions, what it published this frame, the messages
//! waiting for it, and its figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use grove::Backpressure;
use grove::abi::{RawBytes, RawMessage};

use super::queue::{Parts, Queue};
use super::reject::RejectTable;

/// A subscription of a module or of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscription {
    pub(crate) pattern: String,
    pub(crate) policy: Backpressure,
    pub(crate) capacity: usize,
}

/// Something that went wrong on the bus for a module, reported after the frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Problem {
    pub(crate) topic: String,
    pub(crate) what: String,
}

/// A module's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) published: u64,
    pub(crate) delivered: u64,
    pub(crate) dropped: u64,
    pub(crate) rejected: u64,
    pub(crate) decode_errors: u64,
}

/// Raw views of a queue's messages, handed to a module for one call.
#[derive(Debug)]
struct InboxBuf(Vec<RawMessage>);

// SAFETY: the views point into the arena of the queue of the same `ModuleBus` (which moves
// with them), are only read by the module during the call they were made for, and are
// cleared when that call ends: between calls, when a module moves between threads, the
// list is empty.
unsafe impl Send for InboxBuf {}

/// A module's end of the bus.
#[derive(Debug)]
pub(crate) struct ModuleBus {
    pub(crate) name: Arc<str>,
    pub(crate) subscriptions: Vec<Subscription>,
    /// Bumped on every change of `subscriptions`.
    pub(crate) version: u64,
    /// The subscriptions made by the `init` under way, which replace the set if there are
    /// any; `None` outside `init`.
    collecting: Option<Vec<Subscription>>,
    /// What the module published this frame.
    pub(crate) outbox: Queue,
    /// Messages waiting for the module.
    pub(crate) queue: Queue,
    /// How many messages `queue` holds, shared with publishers for reject subscriptions.
    pub(crate) queued: Arc<AtomicUsize>,
    /// The messages of `queue` handed to the call under way, built on demand.
    inbox: InboxBuf,
    /// Whether a `process` call is under way (only it receives messages).
    in_process: bool,
    /// The reject subscriptions of every module, for publications.
    pub(crate) rejects: Arc<RejectTable>,
    pub(crate) counters: Counters,
    pub(crate) problems: Vec<Problem>,
}

impl ModuleBus {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            subscriptions: Vec::new(),
            version: 0,
            collecting: None,
            outbox: Queue::default(),
            queue: Queue::default(),
            queued: Arc::new(AtomicUsize::new(0)),
            inbox: InboxBuf(Vec::new()),
            in_process: false,
            rejects: Arc::default(),
            counters: Counters::default(),
            problems: Vec::new(),
        }
    }

    pub(crate) fn rename(&mut self, name: &str) {
        self.name = name.into();
    }

    /// Adds (or updates) a subscription.
    pub(crate) fn subscribe(&mut self, subscription: Subscription) {
        let set = self.collecting.as_mut().unwrap_or(&mut self.subscriptions);
        match set.iter_mut().find(|s| s.pattern == subscription.pattern) {
            Some(existing) if *existing == subscription => return,
            Some(existing) => *existing = subscription,
            None => set.push(subscription),
        }
        if self.collecting.is_none() {
            self.version += 1;
        }
    }

    pub(crate) fn unsubscribe(&mut self, pattern: &str) {
        if let Some(collecting) = &mut self.collecting {
            collecting.retain(|s| s.pattern != pattern);
            return;
        }
        let before = self.subscriptions.len();
        self.subscriptions.retain(|s| s.pattern != pattern);
        if self.subscriptions.len() != before {
            self.version += 1;
        }
    }

    /// An `init` starts: what it subscribes to is collected.
    pub(crate) fn begin_init(&mut self) {
        self.collecting = Some(Vec::new());
    }

    /// The `init` ended: if it succeeded and subscribed to anything, that is the module's
    /// set from now on; otherwise the set is unchanged.
    pub(crate) fn end_init(&mut self, succeeded: bool) {
        let Some(collected) = self.collecting.take() else {
            return;
        };
        if succeeded && !collected.is_empty() && collected != self.subscriptions {
            self.subscriptions = collected;
            self.version += 1;
        }
    }

    /// A `process` call starts.
    pub(crate) fn begin_process(&mut self) {
        self.in_process = true;
        self.inbox.0.clear();
    }

    /// The `process` call ended: the messages handed to it are consumed if it returned,
    /// kept for the next version if it panicked.
    pub(crate) fn end_process(&mut self, succeeded: bool) {
        self.in_process = false;
        self.inbox.0.clear();
        if succeeded && !self.queue.is_empty() {
            self.counters.delivered += self.queue.len() as u64;
            self.queue.pop_front(self.queue.len());
            self.queued.store(0, Ordering::Relaxed);
        }
    }

    /// The messages for the call under way, valid until it ends; empty outside `process`.
    pub(crate) fn inbox(&mut self) -> &[RawMessage] {
        if !self.in_process {
            return &[];
        }
        if self.inbox.0.len() != self.queue.len() {
            let raw = self.queue.iter().map(|p| RawMessage {
                topic: RawBytes::new(p.topic.as_bytes()),
                publisher: RawBytes::new(p.publisher.as_bytes()),
                type_name: RawBytes::new(p.type_name.as_bytes()),
                type_fingerprint: p.fingerprint,
                format: p.format,
                payload: RawBytes::new(p.payload),
            });
            self.inbox.0.clear();
            self.inbox.0.extend(raw);
        }
        &self.inbox.0
    }

    /// Records a publication from this module.
    pub(crate) fn publish(
        &mut self,
        topic: &str,
        type_name: &str,
        fingerprint: u64,
        format: u32,
        payload: &[u8],
    ) {
        self.counters.published += 1;
        self.outbox.push_unbounded(&Parts {
            topic,
            publisher: &self.name,
            type_name,
            fingerprint,
            format,
            payload,
        });
    }

    /// Records a problem, once per topic and kind per frame.
    pub(crate) fn problem(&mut self, topic: &str, what: String) {
        let problem = Problem {
            topic: topic.to_owned(),
            what,
        };
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }
}
