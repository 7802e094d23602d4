//! What crosses the boundary for messaging: a message as both sides see it
//! ([`RawMessage`]), a module's inbox for one call ([`RawInbox`]), and the constants of the
//! bus entries of [`HostApi`](super::HostApi).
//!
//! The host finds the module a bus call is for from the call under way on the calling
//! thread (it marks every call into a module), so no entry takes a module handle: a bus
//! call made outside a call into the module (from a thread it started, say) is refused.

use super::RawBytes;

/// `policy` of `bus_subscribe`: a full queue drops its oldest message for the new one.
pub const BACKPRESSURE_DROP_OLDEST: u32 = 0;
/// `policy` of `bus_subscribe`: a message replaces the queued one of the same topic
/// (coalesce); a full queue then drops its oldest.
pub const BACKPRESSURE_KEEP_LATEST: u32 = 1;
/// `policy` of `bus_subscribe`: a publication that finds the queue full is refused, and the
/// publisher told.
pub const BACKPRESSURE_REJECT: u32 = 2;

/// `format` of a message: the SDK's positional encoding, read only by a type of the same
/// fingerprint.
pub const MESSAGE_POSITIONAL: u32 = 0;
/// `format` of a message: self-describing (MessagePack with field names), for types whose
/// shape cannot be traced.
pub const MESSAGE_SELF_DESCRIBING: u32 = 1;

/// `kind` of `bus_report`: a message was published from an unencodable value.
pub const REPORT_ENCODE_FAILED: u32 = 0;
/// `kind` of `bus_report`: a delivered message did not decode into the type asked for.
pub const REPORT_DECODE_FAILED: u32 = 1;

/// A message. Published: `publisher` is ignored (the host knows who publishes). Delivered:
/// every field is set, and valid until the end of the call into the module.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawMessage {
    /// The topic, `:`-separated segments.
    pub topic: RawBytes,
    /// The publishing module's name (`host` for the host).
    pub publisher: RawBytes,
    /// The payload type's Rust name, for error messages.
    pub type_name: RawBytes,
    /// The fingerprint of the payload type's serde shape (0: unknown).
    pub type_fingerprint: u64,
    /// [`MESSAGE_POSITIONAL`] or [`MESSAGE_SELF_DESCRIBING`].
    pub format: u32,
    /// The encoded payload.
    pub payload: RawBytes,
}

/// A module's inbox for the current call: `len` messages at `messages`, valid until the
/// call into the module returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawInbox {
    /// The first message; dangling when `len` is 0.
    pub messages: *const RawMessage,
    /// How many.
    pub len: usize,
}

impl RawInbox {
    /// No messages.
    pub const EMPTY: RawInbox = RawInbox {
        messages: std::ptr::NonNull::dangling().as_ptr(),
        len: 0,
    };

    /// The messages.
    ///
    /// # Safety
    /// `messages` must point to `len` messages valid for `'a`.
    pub unsafe fn as_slice<'a>(&self) -> &'a [RawMessage] {
        if self.len == 0 || self.messages.is_null() {
            return &[];
        }
        // SAFETY: the caller guarantees `len` valid messages for 'a.
        unsafe { std::slice::from_raw_parts(self.messages, self.len) }
    }
}
