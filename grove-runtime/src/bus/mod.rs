//! The message bus: topics published by modules and the host, delivered to subscribers
//! from the next frame, through queues the host owns (so nothing is lost across a reload).
//!
//! During a frame each module publishes into its own outbox (no lock, whatever thread runs
//! it). Between frames the engine routes every outbox, in module order, then the host's,
//! into the subscribers' queues: publication order per publisher is kept, and the result is
//! the same under every module system. A module's queue is handed to its next `process`
//! whole and consumed when that call returns; a faulted or reloading module keeps its
//! queue for the next version. Which subscribers a topic reaches is computed once per topic
//! and kept until a subscription changes.

mod api;
mod queue;
mod reject;
mod slot;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use grove::Backpressure;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub(crate) use api::{BUS_FNS, lend, static_host_api};
use queue::{Parts, Pushed, Queue};
use reject::{RejectEntry, RejectTable};
pub(crate) use slot::{ModuleBus, Subscription};

use crate::hosted::HostedModule;

/// The name host publications carry as their publisher.
pub const HOST_PUBLISHER: &str = "host";

/// Where a topic's messages go.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Module `index`'s queue, under its subscription `sub`.
    Module { index: usize, sub: usize },
    /// Host inbox `index`.
    Host { index: usize },
}

/// A topic's subscribers and figures.
#[derive(Debug, Default)]
struct Route {
    targets: Vec<Target>,
    /// Whether `targets` is up to date.
    fresh: bool,
    counters: TopicCounters,
}

#[derive(Debug, Clone, Copy, Default)]
struct TopicCounters {
    published: u64,
    routed: u64,
    dropped: u64,
    rejected: u64,
}

/// A host subscription's queue, shared with its [`Inbox`].
#[derive(Debug)]
struct HostQueue {
    subscription: Subscription,
    queue: Queue,
    dropped: u64,
    delivered: u64,
}

/// The engine's bus.
#[derive(Debug, Default)]
pub(crate) struct Bus {
    host_outbox: Queue,
    host_published: u64,
    /// Reused for encoding the host's publications: no allocation per message.
    scratch: Vec<u8>,
    host_inboxes: Vec<Arc<Mutex<HostQueue>>>,
    /// Routes by topic: the index into `route_list`.
    routes: HashMap<String, usize>,
    route_list: Vec<(String, Route)>,
    /// The route of the last topic routed: consecutive messages on one topic (the common
    /// case) skip the hash lookup.
    last_route: Option<usize>,
    /// What the routes were computed for: every module's id and subscription version, and
    /// the host inboxes.
    layout: Vec<(u64, u64)>,
    host_layout: usize,
    /// When each problem was last logged.
    logged: HashMap<(String, String, String), Instant>,
    patterns: PatternIndex,
}

/// A problem to report, after a frame.
#[derive(Debug, Clone)]
pub(crate) struct Reported {
    pub(crate) module: String,
    pub(crate) topic: String,
    pub(crate) problem: String,
    /// Whether to log it (at most once a second per module, topic and problem).
    pub(crate) log: bool,
}

impl Bus {
    /// Publishes `value` from the host; delivered in the next frame.
    pub(crate) fn publish<T: Serialize + DeserializeOwned + 'static>(
        &mut self,
        topic: &str,
        value: &T,
    ) -> Result<(), grove::BusError> {
        grove::bus::check_topic(topic)?;
        let payload = &mut self.scratch;
        let (fingerprint, type_name, format) =
            grove::bus::encode_payload(value, payload).map_err(|message| {
                grove::BusError::Encode {
                    topic: topic.to_owned(),
                    message,
                }
            })?;
        self.host_outbox.push_unbounded(&Parts {
            topic,
            publisher: HOST_PUBLISHER,
            type_name,
            fingerprint,
            format,
            payload,
        });
        self.host_published += 1;
        Ok(())
    }

    /// A host inbox for `pattern`.
    pub(crate) fn subscribe(
        &mut self,
        pattern: &str,
        policy: Backpressure,
        capacity: usize,
    ) -> Result<Inbox, grove::BusError> {
        grove::bus::check_pattern(pattern)?;
        let queue = Arc::new(Mutex::new(HostQueue {
            subscription: Subscription {
                pattern: pattern.to_owned(),
                policy,
                capacity: capacity.max(1),
            },
            queue: Queue::default(),
            dropped: 0,
            delivered: 0,
        }));
        self.host_inboxes.push(Arc::clone(&queue));
        Ok(Inbox { queue })
    }

    /// Routes the host's publications (made between frames) to the subscribers.
    pub(crate) fn route_host(&mut self, modules: &mut [HostedModule]) {
        if self.host_outbox.is_empty() {
            return;
        }
        self.refresh(modules);
        let outbox = std::mem::take(&mut self.host_outbox);
        self.route(&outbox, modules);
        self.host_outbox = outbox;
        self.host_outbox.clear();
        Self::count_queued(modules);
    }

    /// Routes what the modules published this frame, in module order.
    pub(crate) fn route_modules(&mut self, modules: &mut [HostedModule]) {
        // Also with nothing to route: publications of the next frame check the reject
        // subscriptions made in this one.
        self.refresh(modules);
        if modules.iter().all(|m| m.bus.outbox.is_empty()) {
            return;
        }
        for index in 0..modules.len() {
            if modules[index].bus.outbox.is_empty() {
                continue;
            }
            let outbox = std::mem::take(&mut modules[index].bus.outbox);
            self.route(&outbox, modules);
            let slot = &mut modules[index].bus.outbox;
            *slot = outbox;
            slot.clear();
        }
        Self::count_queued(modules);
    }

    fn count_queued(modules: &[HostedModule]) {
        for module in modules {
            module
                .bus
                .queued
                .store(module.bus.queue.len(), Ordering::Release);
        }
    }

    fn route(&mut self, outbox: &Queue, modules: &mut [HostedModule]) {
        for parts in outbox.iter() {
            let index = match self.last_route {
                Some(last) if self.route_list[last].0 == parts.topic => last,
                _ => match self.routes.get(parts.topic) {
                    Some(&index) => index,
                    None => {
                        // Topics are kept for their figures; publishing on ever new topics
                        // would grow this without bound, so past a limit it starts over.
                        if self.route_list.len() >= 65_536 {
                            self.routes.clear();
                            self.route_list.clear();
                        }
                        self.route_list
                            .push((parts.topic.to_owned(), Route::default()));
                        let index = self.route_list.len() - 1;
                        self.routes.insert(parts.topic.to_owned(), index);
                        index
                    }
                },
            };
            self.last_route = Some(index);
            let route = &mut self.route_list[index].1;
            if !route.fresh {
                route.targets = self.patterns.targets(parts.topic);
                route.fresh = true;
            }
            route.counters.published += 1;
            for target in &route.targets {
                let pushed = match *target {
                    Target::Module { index, sub } => {
                        let bus = &mut modules[index].bus;
                        let Some(subscription) = bus.subscriptions.get(sub) else {
                            continue;
                        };
                        let (policy, capacity) = (subscription.policy, subscription.capacity);
                        let pushed = bus.queue.push(&parts, policy, capacity);
                        match pushed {
                            Pushed::DroppedOldest | Pushed::Replaced => bus.counters.dropped += 1,
                            Pushed::Rejected => bus.counters.rejected += 1,
                            Pushed::TooBig => {
                                bus.counters.dropped += 1;
                                bus.problem(
                                    parts.topic,
                                    format!(
                                        "a message of {} bytes from `{}` was dropped: a queue holds {} MiB at most",
                                        parts.payload.len(),
                                        parts.publisher,
                                        queue::MAX_QUEUE_BYTES >> 20
                                    ),
                                );
                            }
                            Pushed::Queued => {}
                        }
                        pushed
                    }
                    Target::Host { index } => {
                        let mut host = self.host_inboxes[index]
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        let (policy, capacity) =
                            (host.subscription.policy, host.subscription.capacity);
                        let pushed = host.queue.push(&parts, policy, capacity);
                        if pushed != Pushed::Queued {
                            host.dropped += 1;
                        }
                        pushed
                    }
                };
                match pushed {
                    Pushed::Queued => route.counters.routed += 1,
                    Pushed::DroppedOldest | Pushed::Replaced => {
                        route.counters.routed += 1;
                        route.counters.dropped += 1;
                    }
                    Pushed::Rejected => route.counters.rejected += 1,
                    Pushed::TooBig => route.counters.dropped += 1,
                }
            }
        }
    }

    /// Recomputes routes when a subscription changed, a module came or went, or a host
    /// inbox came or went; hands every module the reject subscriptions.
    fn refresh(&mut self, modules: &mut [HostedModule]) {
        self.host_inboxes
            .retain(|inbox| Arc::strong_count(inbox) > 1);
        let same = self.layout.len() == modules.len()
            && self.host_layout == self.host_inboxes.len()
            && self
                .layout
                .iter()
                .zip(modules.iter())
                .all(|(&(id, version), m)| id == m.id() && version == m.bus.version);
        if same {
            return;
        }
        self.layout = modules.iter().map(|m| (m.id(), m.bus.version)).collect();
        self.host_layout = self.host_inboxes.len();
        for (_, route) in &mut self.route_list {
            route.fresh = false;
        }
        self.patterns = PatternIndex::build(modules, &self.host_inboxes);
        let rejects: Vec<RejectEntry> = modules
            .iter()
            .flat_map(|m| {
                m.bus
                    .subscriptions
                    .iter()
                    .filter(|s| s.policy == Backpressure::Reject)
                    .map(|s| RejectEntry {
                        pattern: s.pattern.clone(),
                        subscriber: Arc::clone(&m.bus.name),
                        capacity: s.capacity,
                        queued: Arc::clone(&m.bus.queued),
                    })
            })
            .collect();
        let rejects = Arc::new(RejectTable(rejects));
        for module in modules.iter_mut() {
            module.bus.rejects = Arc::clone(&rejects);
        }
    }

    /// The problems modules met this frame, taken from them.
    pub(crate) fn take_problems(&mut self, modules: &mut [HostedModule]) -> Vec<Reported> {
        let mut out = Vec::new();
        for module in modules {
            for problem in module.bus.problems.drain(..) {
                let key = (
                    module.bus.name.to_string(),
                    problem.topic.clone(),
                    problem.what.clone(),
                );
                let now = Instant::now();
                let log = self
                    .logged
                    .get(&key)
                    .is_none_or(|at| now.duration_since(*at) >= Duration::from_secs(1));
                if log {
                    if self.logged.len() > 4096 {
                        self.logged.clear();
                    }
                    self.logged.insert(key, now);
                }
                out.push(Reported {
                    module: module.bus.name.to_string(),
                    topic: problem.topic,
                    problem: problem.what,
                    log,
                });
            }
        }
        out
    }

    /// The bus's figures.
    pub(crate) fn stats(&self, modules: &[HostedModule]) -> BusStats {
        let mut topics: Vec<TopicStats> = self
            .route_list
            .iter()
            .map(|(topic, route)| TopicStats {
                topic: topic.clone(),
                published: route.counters.published,
                routed: route.counters.routed,
                dropped: route.counters.dropped,
                rejected: route.counters.rejected,
            })
            .collect();
        topics.sort_by(|a, b| a.topic.cmp(&b.topic));
        BusStats {
            topics,
            modules: modules.iter().map(|m| module_stats(&m.bus)).collect(),
            host_published: self.host_published,
        }
    }
}

/// The figures of one module's end of the bus.
pub(crate) fn module_stats(bus: &ModuleBus) -> ModuleBusStats {
    ModuleBusStats {
        module: bus.name.to_string(),
        subscriptions: bus
            .subscriptions
            .iter()
            .map(|s| s.pattern.clone())
            .collect(),
        queued: bus.queue.len(),
        published: bus.counters.published,
        delivered: bus.counters.delivered,
        dropped: bus.counters.dropped,
        rejected: bus.counters.rejected,
        decode_errors: bus.counters.decode_errors,
    }
}

/// Every subscription, indexed by the first segment of its pattern, so that a topic seen
/// for the first time is matched against the few patterns that can match it rather than
/// all of them.
#[derive(Debug, Default)]
struct PatternIndex {
    /// Patterns starting with a literal segment, by that segment.
    by_first: HashMap<String, Vec<Candidate>>,
    /// Patterns starting with a wildcard.
    wild: Vec<Candidate>,
}

/// A subscription: whose, which one, and its pattern.
#[derive(Debug, Clone)]
struct Candidate {
    target: Target,
    /// Module order first, then the subscription's place: the first match of a module
    /// is its subscription with the smallest rank.
    rank: (usize, usize),
    pattern: String,
}

impl PatternIndex {
    fn build(modules: &[HostedModule], host: &[Arc<Mutex<HostQueue>>]) -> Self {
        let mut index = Self::default();
        for (m, module) in modules.iter().enumerate() {
            for (sub, subscription) in module.bus.subscriptions.iter().enumerate() {
                index.add(Candidate {
                    target: Target::Module { index: m, sub },
                    rank: (m, sub),
                    pattern: subscription.pattern.clone(),
                });
            }
        }
        for (h, inbox) in host.iter().enumerate() {
            let pattern = inbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .subscription
                .pattern
                .clone();
            index.add(Candidate {
                target: Target::Host { index: h },
                rank: (usize::MAX, h),
                pattern,
            });
        }
        index
    }

    fn add(&mut self, candidate: Candidate) {
        let first = candidate.pattern.split(':').next().unwrap_or("");
        if first.contains('*') {
            self.wild.push(candidate);
        } else {
            self.by_first
                .entry(first.to_owned())
                .or_default()
                .push(candidate);
        }
    }

    /// The subscribers of `topic`: each module's first matching subscription, in module
    /// order, then the host inboxes.
    fn targets(&self, topic: &str) -> Vec<Target> {
        let first = topic.split(':').next().unwrap_or("");
        let mut matched: Vec<&Candidate> = self
            .by_first
            .get(first)
            .into_iter()
            .flatten()
            .chain(&self.wild)
            .filter(|c| grove::bus::matches(&c.pattern, topic))
            .collect();
        matched.sort_by_key(|c| c.rank);
        let mut targets: Vec<Target> = Vec::with_capacity(matched.len());
        let mut last_module = None;
        for candidate in matched {
            if let Target::Module { index, .. } = candidate.target {
                if last_module == Some(index) {
                    continue;
                }
                last_module = Some(index);
            }
            targets.push(candidate.target);
        }
        targets
    }
}

/// The host's end of a subscription ([`Engine::subscribe_topic`](crate::Engine::subscribe_topic)):
/// the messages of a frame arrive after it. Dropping it ends the subscription.
#[derive(Debug)]
pub struct Inbox {
    queue: Arc<Mutex<HostQueue>>,
}

impl Inbox {
    /// Takes every message waiting, in order.
    pub fn drain(&self) -> Vec<HostMessage> {
        let mut host = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let messages: Vec<HostMessage> = host.queue.iter().map(HostMessage::from_parts).collect();
        host.delivered += messages.len() as u64;
        host.queue.clear();
        messages
    }

    /// How many messages are waiting.
    pub fn len(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .queue
            .len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many were dropped (or coalesced) because the inbox was full.
    pub fn dropped(&self) -> u64 {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped
    }
}

/// A message received by the host: the same questions as a module's
/// [`Message`](grove::Message) answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMessage {
    topic: String,
    publisher: String,
    type_name: String,
    fingerprint: u64,
    format: u32,
    payload: Vec<u8>,
}

impl HostMessage {
    fn from_parts(parts: Parts<'_>) -> Self {
        Self {
            topic: parts.topic.to_owned(),
            publisher: parts.publisher.to_owned(),
            type_name: parts.type_name.to_owned(),
            fingerprint: parts.fingerprint,
            format: parts.format,
            payload: parts.payload.to_vec(),
        }
    }

    /// The topic it was published on.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The module that published it ([`HOST_PUBLISHER`] for the host).
    pub fn publisher(&self) -> &str {
        &self.publisher
    }

    /// The Rust name of the type it was published as.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The encoded payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload as a `T`; a message published as a type of another shape is an error
    /// naming both, never a misread value.
    pub fn decode<T: Serialize + DeserializeOwned + 'static>(
        &self,
    ) -> Result<T, grove::DecodeError> {
        grove::bus::decode_payload::<T>(self.fingerprint, self.format, &self.payload).map_err(
            |reason| grove::DecodeError {
                topic: self.topic.clone(),
                publisher: self.publisher.clone(),
                sent_type: self.type_name.clone(),
                expected_type: std::any::type_name::<T>().to_owned(),
                reason,
            },
        )
    }
}

/// The bus's figures: [`Stats::bus`](crate::Stats::bus).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BusStats {
    /// Per topic ever published on, by name.
    pub topics: Vec<TopicStats>,
    /// Per module, in the order they run.
    pub modules: Vec<ModuleBusStats>,
    /// Messages the host published.
    pub host_published: u64,
}

/// One topic's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TopicStats {
    /// The topic.
    pub topic: String,
    /// Messages published on it.
    pub published: u64,
    /// Copies put in subscribers' queues (one per subscriber).
    pub routed: u64,
    /// Copies dropped (or coalesced) by full queues.
    pub dropped: u64,
    /// Copies refused by full reject queues.
    pub rejected: u64,
}

/// One module's figures on the bus.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModuleBusStats {
    /// The module.
    pub module: String,
    /// Its subscriptions' patterns.
    pub subscriptions: Vec<String>,
    /// Messages waiting for it.
    pub queued: usize,
    /// Messages it published.
    pub published: u64,
    /// Messages handed to its `process`.
    pub delivered: u64,
    /// Messages for it dropped (or coalesced) because its queue was full.
    pub dropped: u64,
    /// Its publications refused by full reject queues, and messages for it refused.
    pub rejected: u64,
    /// Messages it could not decode into the type it asked for.
    pub decode_errors: u64,
}
