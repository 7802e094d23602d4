//! The bus entries of the host's table ([`BUS_FNS`]), and how a call from a module finds
//! its [`ModuleBus`]: the engine lends the module's bus to the thread for the length of
//! each call into the module ([`lend`]), and the entries act on the bus lent to the
//! calling thread. A bus call from any other thread (one the module started, say) finds
//! none and is refused.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::OnceLock;

use grove::Backpressure;
use grove::abi::{
    BusFns, ByteSink, HostApi, HostApiRef, LogField, LogMetadata, REPORT_DECODE_FAILED, RawBytes,
    RawInbox, RawMessage, Status,
};

use super::slot::{ModuleBus, Subscription};

thread_local! {
    /// The bus of the module being called on this thread; null between calls.
    static LENT: Cell<*mut ModuleBus> = const { Cell::new(std::ptr::null_mut()) };
}

/// Puts the previous lent bus back when dropped, also on a panic.
struct Restore(*mut ModuleBus);

impl Drop for Restore {
    fn drop(&mut self) {
        LENT.with(|lent| lent.set(self.0));
    }
}

/// Runs `f` (a call into a module) with `bus` lent to this thread.
pub(crate) fn lend<R>(bus: &mut ModuleBus, f: impl FnOnce() -> R) -> R {
    let previous = LENT.with(|lent| lent.replace(bus));
    let _restore = Restore(previous);
    f()
}

/// Runs `f` on the bus lent to this thread; `None` when there is none.
fn with_lent<R>(f: impl FnOnce(&mut ModuleBus) -> R) -> Option<R> {
    let bus = LENT.with(Cell::get);
    if bus.is_null() {
        return None;
    }
    // SAFETY: `lend` stores a pointer from a `&mut ModuleBus` that outlives the call it
    // wraps and is not otherwise used during it; the entries run on the lending thread,
    // inside that call, one at a time. What a module may still hold from an earlier entry
    // (its inbox) points into heap buffers of the queue and of the inbox list, which no
    // entry but `inbox` writes, and `inbox` rebuilds the list only when it is not already
    // the queue's (never twice in one call).
    Some(f(unsafe { &mut *bus }))
}

const NOT_IN_A_CALL: &str = "bus calls are made from a module's own calls (init, process, \
    shutdown) on the thread the host called it on, not from a thread the module started";

/// The bus entries of every table the host hands out.
pub(crate) const BUS_FNS: BusFns = BusFns {
    subscribe,
    unsubscribe,
    publish,
    inbox,
    report,
};

/// # Safety
/// The module passes bytes valid for the call.
unsafe fn text<'a>(bytes: &RawBytes) -> Result<&'a str, String> {
    // SAFETY: forwarded to the caller.
    unsafe { bytes.as_str() }.ok_or_else(|| "not UTF-8".to_owned())
}

fn fail(error: &ByteSink<'_>, message: &str) -> Status {
    error.write(message.as_bytes());
    Status::FAILED
}

unsafe extern "C" fn subscribe(
    _ctx: *const c_void,
    pattern: RawBytes,
    policy: u32,
    capacity: u64,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: the module passes bytes valid for the call.
    let pattern = match unsafe { text(&pattern) } {
        Ok(pattern) => pattern,
        Err(e) => return fail(&error, &e),
    };
    let outcome = with_lent(|bus| {
        if let Err(e) = grove::bus::check_pattern(pattern) {
            bus.problem(pattern, format!("cannot subscribe: {e}"));
            return Err(format!("invalid:{pattern}\n{}", reason(&e)));
        }
        let Some(policy) = Backpressure::from_raw(policy) else {
            return Err(format!("unknown backpressure policy {policy}"));
        };
        bus.subscribe(Subscription {
            pattern: pattern.to_owned(),
            policy,
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX).max(1),
        });
        Ok(())
    });
    match outcome {
        Some(Ok(())) => Status::OK,
        Some(Err(e)) => fail(&error, &e),
        None => fail(&error, NOT_IN_A_CALL),
    }
}

fn reason(error: &grove::BusError) -> String {
    match error {
        grove::BusError::InvalidTopic { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

unsafe extern "C" fn unsubscribe(_ctx: *const c_void, pattern: RawBytes) -> Status {
    // SAFETY: the module passes bytes valid for the call.
    let Ok(pattern) = (unsafe { text(&pattern) }) else {
        return Status::FAILED;
    };
    match with_lent(|bus| bus.unsubscribe(pattern)) {
        Some(()) => Status::OK,
        None => Status::FAILED,
    }
}

unsafe extern "C" fn publish(
    _ctx: *const c_void,
    message: &RawMessage,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: the module passes a message whose bytes are valid for the call.
    let (topic, type_name, payload) = unsafe {
        (
            text(&message.topic),
            text(&message.type_name),
            message.payload.as_slice(),
        )
    };
    let (Ok(topic), Ok(type_name)) = (topic, type_name) else {
        return fail(&error, "the topic or type name is not UTF-8");
    };
    let outcome = with_lent(|bus| {
        if let Err(e) = grove::bus::check_topic(topic) {
            bus.problem(topic, format!("cannot publish: {e}"));
            return Err(format!("invalid:{topic}\n{}", reason(&e)));
        }
        if let Err(subscriber) = bus.rejects.admit(topic) {
            bus.counters.rejected += 1;
            bus.problem(
                topic,
                format!("message rejected: the queue of `{subscriber}` is full"),
            );
            return Err(format!("rejected:{subscriber}:{topic}"));
        }
        // A module's first `init` runs before the engine knows its name.
        if bus.name.is_empty()
            && let Some(name) = crate::ffi::calls::current_module()
        {
            bus.rename(&name);
        }
        bus.publish(
            topic,
            type_name,
            message.type_fingerprint,
            message.format,
            payload,
        );
        Ok(())
    });
    match outcome {
        Some(Ok(())) => Status::OK,
        Some(Err(e)) => fail(&error, &e),
        None => fail(&error, NOT_IN_A_CALL),
    }
}

unsafe extern "C" fn inbox(_ctx: *const c_void, out: *mut RawInbox) -> Status {
    let written = with_lent(|bus| {
        let messages = bus.inbox();
        let inbox = RawInbox {
            messages: if messages.is_empty() {
                RawInbox::EMPTY.messages
            } else {
                messages.as_ptr()
            },
            len: messages.len(),
        };
        // SAFETY: the module passes a pointer valid for a write of a `RawInbox`.
        unsafe { out.write(inbox) };
    });
    if written.is_some() {
        Status::OK
    } else {
        Status::FAILED
    }
}

unsafe extern "C" fn report(_ctx: *const c_void, kind: u32, topic: RawBytes, message: RawBytes) {
    // SAFETY: the module passes bytes valid for the call.
    let (topic, message) = unsafe { (text(&topic), text(&message)) };
    let (topic, message) = (topic.unwrap_or("?"), message.unwrap_or("?"));
    with_lent(|bus| {
        if kind == REPORT_DECODE_FAILED {
            bus.counters.decode_errors += 1;
            bus.problem(topic, message.to_owned());
        } else {
            bus.problem(topic, format!("cannot encode the message: {message}"));
        }
    });
}

unsafe extern "C" fn no_log(_ctx: *const c_void, _meta: &LogMetadata) -> bool {
    false
}

unsafe extern "C" fn no_event(_: *const c_void, _: &LogMetadata, _: *const LogField, _: usize) {}

/// The table a module linked into the host reaches the bus through (it logs through the
/// host's own `tracing`, so the log entries do nothing).
pub(crate) fn static_host_api() -> HostApiRef {
    static API: OnceLock<HostApi> = OnceLock::new();
    // SAFETY: the functions ignore `ctx` and may be called from any thread; the table is
    // a static, valid for the life of the process.
    let api = API.get_or_init(|| unsafe {
        HostApi::new(
            std::ptr::null(),
            no_log,
            no_event,
            None,
            None,
            Some(BUS_FNS),
        )
    });
    // SAFETY: as above.
    unsafe { HostApiRef::from_raw(api) }.expect("a full table")
}
