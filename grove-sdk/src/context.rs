//! [`Context`]: what a module sees of the frame it runs in, and its way to the message bus.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::abi::{
    ByteSink, FrameInfo, HostApiRef, REPORT_DECODE_FAILED, REPORT_ENCODE_FAILED, RawBytes,
    RawInbox, RawMessage, Status,
};
use crate::bus::{self, Backpressure, BusError, DEFAULT_CAPACITY, Message};

/// The frame a module is running in (its number and timing), and the message bus.
///
/// Handed to [`Module::init`](crate::Module::init), [`Module::process`](crate::Module::process)
/// and [`Module::shutdown`](crate::Module::shutdown).
///
/// # Messaging
/// ```
/// # use grove::prelude::*;
/// # #[derive(serde::Serialize, serde::Deserialize)] struct KeyPressed { code: u32 }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Collision { a: u32, b: u32 }
/// # struct Game;
/// # impl Module for Game {
/// fn init(&mut self, ctx: &mut Context) {
///     ctx.subscribe("input:*"); // kept by the host across reloads
/// }
///
/// fn process(&mut self, ctx: &mut Context) {
///     for msg in ctx.messages() {
///         if let Ok(key) = msg.decode::<KeyPressed>() { /* ... */ }
///     }
///     ctx.publish("physics:collision", &Collision { a: 1, b: 2 }); // delivered next frame
/// }
/// # }
/// ```
/// Messages published in a frame are delivered from the next one, in the order each
/// publisher published them. Subscriptions belong to the host: a reload keeps them, and
/// the new version's `init` subscribing again changes nothing; if that `init` subscribes at
/// all, what it subscribes to becomes the module's whole set.
#[derive(Debug, Clone)]
pub struct Context {
    frame: FrameInfo,
    link: Link,
    /// A reused buffer for encoding payloads.
    scratch: Vec<u8>,
}

/// How a context reaches the host's bus.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// No bus (a context made by hand, as in a unit test).
    None,
    /// Through the library's attached host table (a loaded module).
    Attached,
    /// Through this table, valid for the context's life (a module linked into the host).
    Direct(HostApiRef),
}

impl Context {
    /// A context for the frame `frame`, without a bus (as in a unit test: publishing is
    /// an error, no messages arrive).
    pub fn from_frame(frame: FrameInfo) -> Self {
        Self {
            frame,
            link: Link::None,
            scratch: Vec::new(),
        }
    }

    /// A context of a loaded module, reaching the host through the library's table.
    pub(crate) fn attached(frame: FrameInfo) -> Self {
        Self {
            link: Link::Attached,
            ..Self::from_frame(frame)
        }
    }

    /// A context reaching the host through `host`: how a host runs a module linked into
    /// it.
    ///
    /// # Safety
    /// `host`'s table must stay valid while the context is used.
    #[doc(hidden)]
    pub unsafe fn with_host(frame: FrameInfo, host: HostApiRef) -> Self {
        Self {
            link: Link::Direct(host),
            ..Self::from_frame(frame)
        }
    }

    fn host<R>(&self, f: impl FnOnce(HostApiRef) -> R) -> Option<R> {
        match self.link {
            Link::None => None,
            Link::Attached => crate::abi::host::with_host(f),
            Link::Direct(host) => Some(f(host)),
        }
    }

    fn no_bus() -> BusError {
        BusError::Host("no message bus: this context was not made by a grove host".into())
    }

    /// Subscribes to `pattern` (`input:*`, `render:**`) with the default queue
    /// ([`Backpressure::DropOldest`], [`DEFAULT_CAPACITY`] messages). A bad pattern is
    /// reported to the host (an event and an error line); [`Context::try_subscribe`]
    /// returns it instead.
    pub fn subscribe(&mut self, pattern: &str) {
        let _ = self.try_subscribe(pattern, Backpressure::DropOldest, DEFAULT_CAPACITY);
    }

    /// Subscribes to `pattern` with a queue of at most `capacity` messages and what to do
    /// when it is full. Subscribing again to the same pattern replaces both.
    pub fn try_subscribe(
        &mut self,
        pattern: &str,
        backpressure: Backpressure,
        capacity: usize,
    ) -> Result<(), BusError> {
        let mut error = Vec::new();
        let status = self
            .host(|host| {
                let bus = host.bus()?;
                // SAFETY: the table is valid for this call (see `host`); the bytes and
                // the sink live across it.
                Some(unsafe {
                    (bus.subscribe)(
                        host.ctx(),
                        RawBytes::new(pattern.as_bytes()),
                        backpressure.to_raw(),
                        capacity as u64,
                        ByteSink::for_vec(&mut error),
                    )
                })
            })
            .flatten()
            .ok_or_else(Self::no_bus)?;
        host_result(status, &error)
    }

    /// Drops the subscription to `pattern`, if there is one.
    pub fn unsubscribe(&mut self, pattern: &str) {
        self.host(|host| {
            let bus = host.bus()?;
            // SAFETY: as in `try_subscribe`.
            Some(unsafe { (bus.unsubscribe)(host.ctx(), RawBytes::new(pattern.as_bytes())) })
        });
    }

    /// Publishes `message` on `topic`; subscribers get it from the next frame. A problem
    /// (a bad topic, a payload serde cannot encode, a full [`Backpressure::Reject`] queue)
    /// is reported to the host (an event and an error line); [`Context::try_publish`]
    /// returns it instead.
    pub fn publish<T: Serialize + DeserializeOwned + 'static>(&mut self, topic: &str, message: &T) {
        let _ = self.try_publish(topic, message);
    }

    /// As [`Context::publish`], returning what went wrong.
    pub fn try_publish<T: Serialize + DeserializeOwned + 'static>(
        &mut self,
        topic: &str,
        message: &T,
    ) -> Result<(), BusError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.publish_encoded(topic, message, &mut scratch);
        self.scratch = scratch;
        result
    }

    fn publish_encoded<T: Serialize + DeserializeOwned + 'static>(
        &self,
        topic: &str,
        message: &T,
        scratch: &mut Vec<u8>,
    ) -> Result<(), BusError> {
        let (type_fingerprint, type_name, format) = match bus::encode_payload(message, scratch) {
            Ok(encoded) => encoded,
            Err(message) => {
                self.report(REPORT_ENCODE_FAILED, topic, &message);
                return Err(BusError::Encode {
                    topic: topic.to_owned(),
                    message,
                });
            }
        };
        let raw = RawMessage {
            topic: RawBytes::new(topic.as_bytes()),
            publisher: RawBytes::EMPTY,
            type_name: RawBytes::new(type_name.as_bytes()),
            type_fingerprint,
            format,
            payload: RawBytes::new(scratch),
        };
        let mut error = Vec::new();
        let status = self
            .host(|host| {
                let bus = host.bus()?;
                // SAFETY: as in `try_subscribe`; `raw` points into values alive across
                // the call.
                Some(unsafe { (bus.publish)(host.ctx(), &raw, ByteSink::for_vec(&mut error)) })
            })
            .flatten()
            .ok_or_else(Self::no_bus)?;
        host_result(status, &error)
    }

    fn report(&self, kind: u32, topic: &str, message: &str) {
        self.host(|host| {
            if let Some(bus) = host.bus() {
                // SAFETY: as in `try_subscribe`.
                unsafe {
                    (bus.report)(
                        host.ctx(),
                        kind,
                        RawBytes::new(topic.as_bytes()),
                        RawBytes::new(message.as_bytes()),
                    )
                }
            }
        });
    }

    /// The messages delivered to this module for this frame, in the order they were
    /// published (per publisher), whether or not they are read. Empty outside `process`.
    pub fn messages(&self) -> impl Iterator<Item = Message<'_>> + '_ {
        let mut inbox = RawInbox::EMPTY;
        self.host(|host| {
            let bus = host.bus()?;
            // SAFETY: as in `try_subscribe`; `inbox` is written by the host.
            Some(unsafe { (bus.inbox)(host.ctx(), &mut inbox) })
        });
        // SAFETY: the host keeps the inbox valid until the call into the module returns,
        // which outlives this context's borrow.
        let raw = unsafe { inbox.as_slice() };
        raw.iter().map(move |raw| {
            // SAFETY: as above.
            unsafe { Message::new(raw, self) }
        })
    }

    /// The frame number, counting from 0.
    pub fn frame(&self) -> u64 {
        self.frame.frame
    }

    /// Time since the previous frame started.
    pub fn delta(&self) -> Duration {
        Duration::from_nanos(self.frame.delta_ns)
    }

    /// Time since the previous frame started, in seconds: the usual factor for movement.
    pub fn delta_secs(&self) -> f32 {
        self.delta().as_secs_f32()
    }

    /// Time since the engine started.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.frame.elapsed_ns)
    }

    /// The raw frame information, as it crosses the ABI.
    pub fn frame_info(&self) -> &FrameInfo {
        &self.frame
    }
}

/// What a module reports about a message it could not decode.
pub(crate) trait DecodeReport {
    fn decode_failed(&self, topic: &str, message: &str);
}

impl DecodeReport for Context {
    fn decode_failed(&self, topic: &str, message: &str) {
        self.report(REPORT_DECODE_FAILED, topic, message);
    }
}

/// A host call's outcome: its error text as a [`BusError`].
fn host_result(status: Status, error: &[u8]) -> Result<(), BusError> {
    if status == Status::OK {
        return Ok(());
    }
    let text = String::from_utf8_lossy(error).into_owned();
    // The host writes a rejection as `rejected:<subscriber>:<topic>`, to be told apart.
    if let Some(rest) = text.strip_prefix("rejected:")
        && let Some((subscriber, topic)) = rest.split_once(':')
    {
        return Err(BusError::Rejected {
            topic: topic.to_owned(),
            subscriber: subscriber.to_owned(),
        });
    }
    if let Some(rest) = text.strip_prefix("invalid:")
        && let Some((topic, reason)) = rest.split_once('\n')
    {
        return Err(BusError::InvalidTopic {
            topic: topic.to_owned(),
            reason: reason.to_owned(),
        });
    }
    Err(BusError::Host(text))
}
