//! [`Queue`]: messages in order, their bytes in one arena, bounded with a backpressure
//! policy. An outbox (what a module published this frame) and an inbox queue (what waits
//! for a subscriber) are both queues. Steady state allocates nothing: the arena and the
//! entry list keep their capacity, and the arena is reset whenever the queue empties.

use std::collections::VecDeque;

use grove::Backpressure;

/// The most bytes a subscriber's queue holds (topics, names and payloads), whatever its
/// message count: a subscriber that stops reading big messages costs at most this.
pub(crate) const MAX_QUEUE_BYTES: usize = 64 << 20;

/// A message as it is pushed: borrowed parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub(crate) topic: &'a str,
    pub(crate) publisher: &'a str,
    pub(crate) type_name: &'a str,
    pub(crate) fingerprint: u64,
    pub(crate) format: u32,
    pub(crate) payload: &'a [u8],
}

/// Where a queued message's parts are in the arena: topic, publisher, type name and
/// payload, one after the other from `start`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    start: usize,
    topic: u32,
    publisher: u32,
    type_name: u32,
    payload: u32,
    fingerprint: u64,
    format: u32,
}

impl Entry {
    fn len(&self) -> usize {
        (self.topic + self.publisher + self.type_name + self.payload) as usize
    }
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued at the end.
    Queued,
    /// Queued at the end; the oldest message was dropped to make room.
    DroppedOldest,
    /// Replaced the queued message of the same topic (keep-latest).
    Replaced,
    /// Refused: the queue is full (reject).
    Rejected,
    /// Dropped: the message alone is larger than a queue may hold.
    TooBig,
}

/// Messages in order.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    entries: VecDeque<Entry>,
    arena: Vec<u8>,
    /// Bytes of the arena still used by queued messages.
    live: usize,
}

impl Queue {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends `parts` with no bound (an outbox).
    pub(crate) fn push_unbounded(&mut self, parts: &Parts<'_>) {
        let entry = self.write(parts);
        self.entries.push_back(entry);
    }

    /// Appends `parts` to a queue of at most `capacity` messages under `policy`.
    pub(crate) fn push(
        &mut self,
        parts: &Parts<'_>,
        policy: Backpressure,
        capacity: usize,
    ) -> Pushed {
        if policy == Backpressure::KeepLatest
            && let Some(index) = self.position_of_topic(parts.topic)
        {
            let old = self.entries[index];
            self.live -= old.len();
            self.entries[index] = self.write(parts);
            self.compact_if_sparse();
            return Pushed::Replaced;
        }
        let capacity = capacity.max(1);
        let size =
            parts.topic.len() + parts.publisher.len() + parts.type_name.len() + parts.payload.len();
        if size > MAX_QUEUE_BYTES {
            return Pushed::TooBig;
        }
        let mut pushed = Pushed::Queued;
        while self.entries.len() >= capacity || self.live + size > MAX_QUEUE_BYTES {
            if policy == Backpressure::Reject {
                return Pushed::Rejected;
            }
            self.pop_front(1);
            pushed = Pushed::DroppedOldest;
        }
        let entry = self.write(parts);
        self.entries.push_back(entry);
        self.compact_if_sparse();
        pushed
    }

    fn position_of_topic(&self, topic: &str) -> Option<usize> {
        self.entries
            .iter()
            .rposition(|e| &self.arena[e.start..e.start + e.topic as usize] == topic.as_bytes())
    }

    fn write(&mut self, parts: &Parts<'_>) -> Entry {
        let start = self.arena.len();
        for bytes in [
            parts.topic.as_bytes(),
            parts.publisher.as_bytes(),
            parts.type_name.as_bytes(),
            parts.payload,
        ] {
            self.arena.extend_from_slice(bytes);
        }
        let entry = Entry {
            start,
            topic: len32(parts.topic.len()),
            publisher: len32(parts.publisher.len()),
            type_name: len32(parts.type_name.len()),
            payload: len32(parts.payload.len()),
            fingerprint: parts.fingerprint,
            format: parts.format,
        };
        self.live += entry.len();
        entry
    }

    /// Drops the first `n` messages.
    pub(crate) fn pop_front(&mut self, n: usize) {
        for entry in self.entries.drain(..n.min(self.entries.len())) {
            self.live -= entry.len();
        }
        if self.entries.is_empty() {
            self.arena.clear();
            self.live = 0;
        }
    }

    /// Drops everything, keeping the allocations.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.arena.clear();
        self.live = 0;
    }

    /// Rewrites the arena with only the live messages once most of it is garbage (dropped
    /// and replaced messages), so a queue that never empties stays bounded.
    fn compact_if_sparse(&mut self) {
        if self.arena.len() < 64 * 1024 || self.arena.len() < self.live + self.live / 2 {
            return;
        }
        let mut arena = Vec::with_capacity(self.live * 2);
        for entry in &mut self.entries {
            let len = entry.len();
            arena.extend_from_slice(&self.arena[entry.start..entry.start + len]);
            entry.start = arena.len() - len;
        }
        self.arena = arena;
    }

    /// The `index`th message.
    pub(crate) fn get(&self, index: usize) -> Option<Parts<'_>> {
        let e = self.entries.get(index)?;
        let mut at = e.start;
        let mut take = |len: u32| {
            let bytes = &self.arena[at..at + len as usize];
            at += len as usize;
            bytes
        };
        let (topic, publisher, type_name) = (take(e.topic), take(e.publisher), take(e.type_name));
        Some(Parts {
            topic: text(topic),
            publisher: text(publisher),
            type_name: text(type_name),
            fingerprint: e.fingerprint,
            format: e.format,
            payload: take(e.payload),
        })
    }

    /// The messages in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Parts<'_>> {
        (0..self.entries.len()).filter_map(|i| self.get(i))
    }
}

/// A topic, publisher or type name as `write` copied it.
fn text(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: `write` copies these parts from `&str`s, whole, and entries are only ever
    // read back at the offsets and lengths it recorded, so the bytes are valid UTF-8.
    // (Checking again cost a third of the routing time of a small message.)
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).expect("a message part under 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(topic: &'a str, payload: &'a [u8]) -> Parts<'a> {
        Parts {
            topic,
            publisher: "p",
            type_name: "T",
            fingerprint: 7,
            format: 0,
            payload,
        }
    }

    fn payloads(q: &Queue) -> Vec<Vec<u8>> {
        q.iter().map(|p| p.payload.to_vec()).collect()
    }

    #[test]
    fn drop_oldest_keeps_the_newest_in_order() {
        let mut q = Queue::default();
        for i in 0..5u8 {
            q.push(&parts("a", &[i]), Backpressure::DropOldest, 3);
        }
        assert_eq!(payloads(&q), [[2], [3], [4]]);
        assert_eq!(q.get(0).unwrap().topic, "a");
    }

    #[test]
    fn keep_latest_coalesces_per_topic() {
        let mut q = Queue::default();
        q.push(&parts("x", &[1]), Backpressure::KeepLatest, 8);
        q.push(&parts("y", &[2]), Backpressure::KeepLatest, 8);
        assert_eq!(
            q.push(&parts("x", &[3]), Backpressure::KeepLatest, 8),
            Pushed::Replaced
        );
        assert_eq!(payloads(&q), [[3], [2]]);
    }

    #[test]
    fn reject_refuses_when_full() {
        let mut q = Queue::default();
        q.push(&parts("a", &[1]), Backpressure::Reject, 1);
        assert_eq!(
            q.push(&parts("a", &[2]), Backpressure::Reject, 1),
            Pushed::Rejected
        );
        assert_eq!(payloads(&q), [[1]]);
    }

    #[test]
    fn a_queue_is_bounded_in_bytes_too() {
        let mut q = Queue::default();
        let big = vec![0u8; 10 << 20];
        for _ in 0..20 {
            q.push(&parts("t", &big), Backpressure::DropOldest, 4096);
        }
        assert_eq!(q.len(), MAX_QUEUE_BYTES / (10 << 20));
        assert!(q.arena.len() <= MAX_QUEUE_BYTES * 3 / 2 + (10 << 20));
        let huge = vec![0u8; MAX_QUEUE_BYTES + 1];
        assert_eq!(
            q.push(&parts("t", &huge), Backpressure::DropOldest, 4096),
            Pushed::TooBig
        );
    }

    #[test]
    fn a_queue_that_never_empties_stays_bounded() {
        let mut q = Queue::default();
        let payload = [0u8; 100];
        for _ in 0..100_000 {
            q.push(&parts("t", &payload), Backpressure::DropOldest, 10);
        }
        assert_eq!(q.len(), 10);
        assert!(q.arena.len() < 200 * 1024, "{}", q.arena.len());
        q.pop_front(10);
        assert!(q.arena.is_empty());
    }
}
