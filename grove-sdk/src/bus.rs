//! Messaging between modules and with the host: topics and patterns, how a payload is
//! encoded and checked, and the [`Message`]s a module reads.
//!
//! A topic is `:`-separated segments (`physics:collision`). A pattern matches topics: `*`
//! matches one segment (`input:*`), and a trailing `**` (or `.*`, as GroveEngine writes it)
//! matches every topic under its prefix, the prefix itself included (`render:**`).
//!
//! A payload is any serde type, encoded positionally and tagged with its type's
//! fingerprint (the hash of its full serde shape): a subscriber decoding into a type of
//! another shape (one side reloaded with a changed message struct) gets a [`DecodeError`]
//! naming the topic, the publisher and both types, never a wrong value. A type whose shape
//! cannot be traced is sent self-describing and decoded by field name.

use std::any::TypeId;
use std::cell::Cell;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::abi::{
    BACKPRESSURE_DROP_OLDEST, BACKPRESSURE_KEEP_LATEST, BACKPRESSURE_REJECT, MESSAGE_POSITIONAL,
    MESSAGE_SELF_DESCRIBING, RawMessage, SCHEMA_UNKNOWN,
};

/// The longest topic or pattern, in bytes.
pub const MAX_TOPIC_BYTES: usize = 1024;

/// How many messages a subscriber's queue holds by default.
pub const DEFAULT_CAPACITY: usize = 4096;

/// What a subscriber's full queue does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backpressure {
    /// Drop the oldest queued message for the new one (the default).
    #[default]
    DropOldest,
    /// Keep only the latest message of each topic: a new one replaces the queued one of
    /// the same topic (state updates, positions). A full queue then drops its oldest.
    KeepLatest,
    /// Refuse the publication: the publisher's `try_publish` gets
    /// [`BusError::Rejected`].
    Reject,
}

impl Backpressure {
    /// The ABI's value.
    pub fn to_raw(self) -> u32 {
        match self {
            Backpressure::DropOldest => BACKPRESSURE_DROP_OLDEST,
            Backpressure::KeepLatest => BACKPRESSURE_KEEP_LATEST,
            Backpressure::Reject => BACKPRESSURE_REJECT,
        }
    }

    /// From the ABI's value.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            BACKPRESSURE_DROP_OLDEST => Some(Backpressure::DropOldest),
            BACKPRESSURE_KEEP_LATEST => Some(Backpressure::KeepLatest),
            BACKPRESSURE_REJECT => Some(Backpressure::Reject),
            _ => None,
        }
    }
}

/// A bus call that did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusError {
    /// Not a valid topic or pattern.
    InvalidTopic {
        /// What was given.
        topic: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The payload could not be encoded.
    Encode {
        /// The topic.
        topic: String,
        /// What serde said.
        message: String,
    },
    /// A subscriber with [`Backpressure::Reject`] has a full queue.
    Rejected {
        /// The topic.
        topic: String,
        /// The subscriber whose queue is full.
        subscriber: String,
    },
    /// The host refused the call (no messaging, or a call outside one into the module).
    Host(String),
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::InvalidTopic { topic, reason } => {
                write!(f, "invalid topic `{topic}`: {reason}")
            }
            BusError::Encode { topic, message } => {
                write!(f, "cannot encode the message for `{topic}`: {message}")
            }
            BusError::Rejected { topic, subscriber } => write!(
                f,
                "message on `{topic}` rejected: the queue of `{subscriber}` is full"
            ),
            BusError::Host(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for BusError {}

/// A message that does not decode into the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The topic.
    pub topic: String,
    /// Who published it.
    pub publisher: String,
    /// The type it was published as.
    pub sent_type: String,
    /// The type asked for.
    pub expected_type: String,
    /// Why it does not decode.
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "message on `{}` from `{}` is a `{}`, not a `{}`: {}",
            self.topic, self.publisher, self.sent_type, self.expected_type, self.reason
        )
    }
}

impl std::error::Error for DecodeError {}

/// Checks a topic to publish on: non-empty `:`-separated segments, no wildcard, no
/// whitespace.
pub fn check_topic(topic: &str) -> Result<(), BusError> {
    check(topic, false)
}

/// Checks a pattern to subscribe to: as a topic, with `*` segments and a trailing `**` (or
/// `.*`).
pub fn check_pattern(pattern: &str) -> Result<(), BusError> {
    check(pattern, true)
}

fn check(topic: &str, pattern: bool) -> Result<(), BusError> {
    let invalid = |reason: &str| {
        Err(BusError::InvalidTopic {
            topic: topic.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if topic.is_empty() {
        return invalid("it is empty");
    }
    if topic.len() > MAX_TOPIC_BYTES {
        return invalid("it is longer than 1024 bytes");
    }
    // Counted, not collected: this runs for every publication.
    let last = topic.bytes().filter(|&b| b == b':').count();
    for (i, segment) in topic.split(':').enumerate() {
        if segment.is_empty() {
            return invalid("it has an empty segment (segments are separated by one `:`)");
        }
        if segment.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid("it contains whitespace or a control character");
        }
        let wildcard =
            segment == "*" || (i == last && (segment == "**" || segment.ends_with(".*")));
        if segment.contains('*') && !(pattern && wildcard) {
            return invalid(if pattern {
                "`*` stands for a whole segment, and `**` only ends a pattern"
            } else {
                "a topic to publish on has no wildcards (`*` is for subscribing)"
            });
        }
    }
    Ok(())
}

/// Whether `topic` matches `pattern` (both checked).
pub fn matches(pattern: &str, topic: &str) -> bool {
    let mut topic_segments = topic.split(':');
    let mut pattern_segments = pattern.split(':').peekable();
    while let Some(p) = pattern_segments.next() {
        let last = pattern_segments.peek().is_none();
        if last && (p == "**" || p == ".*") {
            return true;
        }
        if last && let Some(prefix) = p.strip_suffix(".*") {
            // GroveEngine's `a:b.*`: segment `b`, then anything.
            return topic_segments.next() == Some(prefix);
        }
        match topic_segments.next() {
            Some(t) if p == "*" || p == t => {}
            _ => return false,
        }
    }
    topic_segments.next().is_none()
}

/// How a payload of type `T` travels: its fingerprint (0 when its shape cannot be traced:
/// it then goes self-describing) and its Rust name. Traced once per type and thread.
pub(crate) fn payload_type<T: DeserializeOwned + 'static>() -> (u64, &'static str) {
    // No `thread_local!` with a destructor here: one touched on a host thread would keep
    // this library mapped after it is replaced. A `Cell` has none; the table is a static.
    thread_local! {
        /// The last type asked for: most calls ask for the same type as the one before.
        static LAST: Cell<Option<(TypeId, u64)>> = const { Cell::new(None) };
    }
    static FINGERPRINTS: Mutex<Vec<(TypeId, u64)>> = Mutex::new(Vec::new());
    let id = TypeId::of::<T>();
    let name = std::any::type_name::<T>();
    if let Some((last, fingerprint)) = LAST.with(Cell::get)
        && last == id
    {
        return (fingerprint, name);
    }
    let known = FINGERPRINTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|(t, _)| *t == id)
        .map(|(_, fp)| *fp);
    let fingerprint = known.unwrap_or_else(|| {
        // Tracing runs the type's `Deserialize` on sample values: a panic there only means
        // an unknown shape.
        let fp = crate::abi::panic::catch("publish", crate::state::fingerprint::<T>)
            .unwrap_or(SCHEMA_UNKNOWN);
        FINGERPRINTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, fp));
        fp
    });
    LAST.with(|last| last.set(Some((id, fingerprint))));
    (fingerprint, name)
}

/// Encodes `value` into `out` (cleared first); returns the fingerprint, type name and
/// format. How a host publishes.
#[doc(hidden)]
pub fn encode_payload<T: Serialize + DeserializeOwned + 'static>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(u64, &'static str, u32), String> {
    let (fingerprint, type_name) = payload_type::<T>();
    out.clear();
    if fingerprint != SCHEMA_UNKNOWN {
        crate::positional::append(value, out).map_err(|e| e.to_string())?;
        return Ok((fingerprint, type_name, MESSAGE_POSITIONAL));
    }
    rmp_serde::encode::write_named(out, value).map_err(|e| e.to_string())?;
    Ok((fingerprint, type_name, MESSAGE_SELF_DESCRIBING))
}

/// A delivered message, valid for the call it was delivered in.
#[derive(Clone, Copy)]
pub struct Message<'a> {
    raw: &'a RawMessage,
    context: &'a crate::Context,
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic())
            .field("publisher", &self.publisher())
            .field("type_name", &self.type_name())
            .field("bytes", &self.payload().len())
            .finish()
    }
}

impl<'a> Message<'a> {
    /// # Safety
    /// Every `RawBytes` of `raw` must be valid for `'a`.
    pub(crate) unsafe fn new(raw: &'a RawMessage, context: &'a crate::Context) -> Self {
        Self { raw, context }
    }

    fn text(bytes: &crate::abi::RawBytes) -> &'a str {
        // SAFETY: `new`'s caller guarantees the bytes are valid for 'a; the host writes
        // topics and names from Rust strings.
        unsafe { bytes.as_str() }.unwrap_or("<not UTF-8>")
    }

    /// The topic it was published on.
    pub fn topic(&self) -> &'a str {
        Self::text(&self.raw.topic)
    }

    /// The module that published it (`host` for the host).
    pub fn publisher(&self) -> &'a str {
        Self::text(&self.raw.publisher)
    }

    /// The Rust name of the type it was published as.
    pub fn type_name(&self) -> &'a str {
        Self::text(&self.raw.type_name)
    }

    /// The encoded payload.
    pub fn payload(&self) -> &'a [u8] {
        // SAFETY: as in `text`.
        unsafe { self.raw.payload.as_slice() }
    }

    /// Whether it was published as a `T` (same fingerprint): a cheap test before
    /// [`Message::decode`] when one topic carries several types.
    pub fn is<T: DeserializeOwned + 'static>(&self) -> bool {
        let (fingerprint, _) = payload_type::<T>();
        fingerprint != SCHEMA_UNKNOWN && fingerprint == self.raw.type_fingerprint
    }

    /// The payload as a `T`. A message published as another type is a [`DecodeError`]
    /// (also counted by the host), never a misread value: besides the type's shape, a
    /// positional payload is checked by encoding the value read again.
    pub fn decode<T: Serialize + DeserializeOwned + 'static>(&self) -> Result<T, DecodeError> {
        decode_payload(self.raw.type_fingerprint, self.raw.format, self.payload()).map_err(
            |reason| {
                let error = DecodeError {
                    topic: self.topic().to_owned(),
                    publisher: self.publisher().to_owned(),
                    sent_type: self.type_name().to_owned(),
                    expected_type: std::any::type_name::<T>().to_owned(),
                    reason,
                };
                use crate::context::DecodeReport;
                self.context.decode_failed(self.topic(), &error.to_string());
                error
            },
        )
    }
}

/// Decodes a payload sent as `format` by a type of fingerprint `fingerprint` into a `T`,
/// or says why not. How a host reads a message.
#[doc(hidden)]
pub fn decode_payload<T: Serialize + DeserializeOwned + 'static>(
    fingerprint: u64,
    format: u32,
    payload: &[u8],
) -> Result<T, String> {
    let (expected, type_name) = payload_type::<T>();
    match format {
        MESSAGE_POSITIONAL if expected != SCHEMA_UNKNOWN => {
            if expected == fingerprint {
                crate::positional::from_slice(payload).map_err(|e| e.to_string())
            } else {
                Err("the two types differ in shape".to_owned())
            }
        }
        MESSAGE_POSITIONAL => Err(format!(
            "`{type_name}`'s shape cannot be traced, and the message was sent positionally"
        )),
        MESSAGE_SELF_DESCRIBING => rmp_serde::from_slice(payload).map_err(|e| e.to_string()),
        other => Err(format!("unknown message format {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        assert!(matches("input:*", "input:key"));
        assert!(!matches("input:*", "input:key:down"));
        assert!(!matches("input:*", "input"));
        assert!(matches("render:**", "render"));
        assert!(matches("render:**", "render:sprite:3"));
        assert!(matches("render.*", "render:sprite"));
        assert!(matches("a:b.*", "a:b:c:d"));
        assert!(!matches("a:b.*", "a:bc:d"));
        assert!(matches("*:collision", "physics:collision"));
        assert!(matches("a:b", "a:b"));
        assert!(!matches("a:b", "a:b:c"));
    }

    #[test]
    fn bad_topics_and_patterns_say_why() {
        let long = "a".repeat(MAX_TOPIC_BYTES + 1);
        for bad in ["", "a::b", "a:*", "a b", ":a", "a:\0b", "a\x1b[2J", &long] {
            assert!(check_topic(bad).is_err(), "{bad:?}");
        }
        for bad in ["a:**:b", "a*", "", "a:b*"] {
            assert!(check_pattern(bad).is_err(), "{bad:?}");
        }
        for good in ["a:*:c", "a:**", "*", "a.*", "input:key"] {
            assert!(check_pattern(good).is_ok(), "{good:?}");
        }
        let err = check_topic("a:*").unwrap_err().to_string();
        assert!(err.contains("no wildcards"), "{err}");
    }
}
