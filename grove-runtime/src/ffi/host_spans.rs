//! The host's end of a loaded module's `tracing` spans: the `HostApi` span entries.
//!
//! A module's new span is created in the host's subscriber (the calling thread's default)
//! from a host-side twin of its callsite ([`super::host_log`]), with its fields, and the
//! module is given a handle for it: a number of the host's, which the module uses as the
//! span's id. Entering, leaving, recording, cloning and closing that id in the module does
//! the same to the host's span, on the same thread, so the host's subscriber sees the
//! module's spans as it sees a static module's, and the module's events inside them.
//!
//! The handles live as long as the module holds its span: the last `span_close` forgets
//! one. A library unloaded with spans still open (held in a field the module never drops)
//! has them closed when its [`HostSpans`] goes, so the host's subscriber frees them.

use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use grove::abi::{LogField, LogMetadata, SpanFns, interest, span_parent};
use tracing_core::Dispatch;
use tracing_core::span::{Attributes, Id, Record};

use super::host_log::{HostCallsite, ModuleLog, decode_fields, emit, print, with_value_set};

/// The span entries every host table carries.
pub(crate) const SPAN_FNS: SpanFns = SpanFns {
    register: span_register,
    enabled: span_enabled,
    new: span_new,
    record: span_record,
    follows_from: span_follows_from,
    enter: span_enter,
    exit: span_exit,
    clone: span_clone,
    close: span_close,
    event_in: log_event_in,
};

/// One of a module's spans, as the host holds it.
#[derive(Debug)]
struct HostSpan {
    /// The subscriber that created it, which every later call about it goes to.
    dispatch: Dispatch,
    id: Id,
    callsite: &'static HostCallsite,
    /// Handles the module holds (`span_new` and each `span_clone` add one).
    refs: usize,
}

/// A library's spans, by handle.
#[derive(Debug, Default)]
pub(crate) struct HostSpans {
    by_handle: Mutex<HashMap<u64, HostSpan>>,
}

/// Handles given out so far; 0 and `u64::MAX` are never one.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

impl HostSpans {
    fn insert(&self, span: HostSpan) -> u64 {
        let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(handle, span);
        handle
    }

    /// The subscriber and id of span `handle`, if the module holds it.
    fn get(&self, handle: u64) -> Option<(Dispatch, Id, &'static HostCallsite)> {
        self.lock()
            .get(&handle)
            .map(|s| (s.dispatch.clone(), s.id.clone(), s.callsite))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, HostSpan>> {
        self.by_handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for HostSpans {
    /// Closes the spans the module still held.
    fn drop(&mut self) {
        let spans = std::mem::take(&mut *self.lock());
        for span in spans.into_values() {
            for _ in 0..span.refs {
                span.dispatch.try_close(span.id.clone());
            }
        }
    }
}

/// # Safety
/// `ctx` must be the `ModuleLog` of a live `HostLink`.
unsafe fn module_log<'a>(ctx: *const c_void) -> &'a ModuleLog {
    // SAFETY: forwarded: every span entry is handed out in a table whose `ctx` is its
    // `ModuleLog`, alive while the library may call it.
    unsafe { &*ctx.cast::<ModuleLog>() }
}

/// The host's id of the parent `raw` (a handle or one of `span_parent`): `None` for the
/// current span, `Some(None)` for none.
fn parent(log: &ModuleLog, raw: u64) -> Option<Option<Id>> {
    match raw {
        span_parent::CURRENT => None,
        span_parent::ROOT => Some(None),
        // A span the host no longer knows: in none, as `tracing` does with a disabled one.
        handle => Some(log.spans().get(handle).map(|(_, id, _)| id)),
    }
}

/// As `log_register`: "ask every time" (see `HostCallsite::enabled`).
unsafe extern "C" fn span_register(_ctx: *const c_void, _meta: &LogMetadata) -> u32 {
    interest::SOMETIMES
}

unsafe extern "C" fn span_enabled(ctx: *const c_void, meta: &LogMetadata) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` comes with this table; `meta` is valid for this call.
        let log = unsafe { module_log(ctx) };
        // SAFETY: as above.
        unsafe { log.callsite(meta, true) }.enabled()
    }))
    .unwrap_or(false)
}

unsafe extern "C" fn span_new(
    ctx: *const c_void,
    meta: &LogMetadata,
    fields: *const LogField,
    len: usize,
    parent_raw: u64,
) -> u64 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` comes with this table.
        let log = unsafe { module_log(ctx) };
        // SAFETY: `meta` is valid for this call.
        let callsite = unsafe { log.callsite(meta, true) };
        // SAFETY: the module passes `len` fields valid for this call.
        let values = unsafe { decode_fields(fields, len) };
        // The host's dispatcher, not the tagger that stands in front of it while static
        // modules are called: the span outlives the call.
        let dispatch = crate::static_log::in_force(Dispatch::clone);
        let parent = parent(log, parent_raw);
        let mut id = None;
        with_value_set(callsite, None, &values, |meta, value_set| {
            let attributes = match parent {
                None => Attributes::new(meta, value_set),
                Some(None) => Attributes::new_root(meta, value_set),
                Some(Some(parent)) => Attributes::child_of(parent, meta, value_set),
            };
            id = Some(dispatch.new_span(&attributes));
        });
        let Some(id) = id else {
            return 0;
        };
        log.spans().insert(HostSpan {
            dispatch,
            id,
            callsite,
            refs: 1,
        })
    }))
    .unwrap_or(0)
}

unsafe extern "C" fn span_record(
    ctx: *const c_void,
    span: u64,
    fields: *const LogField,
    len: usize,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` comes with this table.
        let log = unsafe { module_log(ctx) };
        let Some((dispatch, id, callsite)) = log.spans().get(span) else {
            return;
        };
        // SAFETY: the module passes `len` fields valid for this call.
        let values = unsafe { decode_fields(fields, len) };
        with_value_set(callsite, None, &values, |_, value_set| {
            dispatch.record(&id, &Record::new(value_set));
        });
    }));
}

unsafe extern "C" fn span_follows_from(ctx: *const c_void, span: u64, follows: u64) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` comes with this table.
        let spans = unsafe { module_log(ctx) }.spans();
        if let (Some((dispatch, id, _)), Some((_, follows, _))) =
            (spans.get(span), spans.get(follows))
        {
            dispatch.record_follows_from(&id, &follows);
        }
    }));
}

unsafe extern "C" fn span_enter(ctx: *const c_void, span: u64) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` comes with this table.
        if let Some((dispatch, id, _)) = unsafe { module_log(ctx) }.spans().get(span) {
            dispatch.enter(&id);
        }
    }));
}

unsafe extern "C" fn span_exit(ctx: *const c_void, span: u64) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` comes with this table.
        if let Some((dispatch, id, _)) = unsafe { module_log(ctx) }.spans().get(span) {
            dispatch.exit(&id);
        }
    }));
}

unsafe extern "C" fn span_clone(ctx: *const c_void, span: u64) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` comes with this table.
        let spans = unsafe { module_log(ctx) }.spans();
        let mut by_handle = spans.lock();
        if let Some(held) = by_handle.get_mut(&span) {
            held.refs += 1;
            held.dispatch.clone_span(&held.id);
        }
    }));
}

unsafe extern "C" fn span_close(ctx: *const c_void, span: u64) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` comes with this table.
        let spans = unsafe { module_log(ctx) }.spans();
        let (dispatch, id) = {
            let mut by_handle = spans.lock();
            let Some(held) = by_handle.get_mut(&span) else {
                return false;
            };
            held.refs -= 1;
            let closing = (held.dispatch.clone(), held.id.clone());
            if held.refs == 0 {
                by_handle.remove(&span);
            }
            closing
        };
        // Outside the lock: the subscriber may log, or close a parent.
        dispatch.try_close(id)
    }))
    .unwrap_or(false)
}

unsafe extern "C" fn log_event_in(
    ctx: *const c_void,
    meta: &LogMetadata,
    fields: *const LogField,
    len: usize,
    parent_raw: u64,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` comes with this table.
        let log = unsafe { module_log(ctx) };
        // SAFETY: `meta` is valid for this call.
        let callsite = unsafe { log.callsite(meta, false) };
        // SAFETY: the module passes `len` fields valid for this call.
        let values = unsafe { decode_fields(fields, len) };
        emit(callsite, log.module(), &values, parent(log, parent_raw));
        if crate::console::module_logs_shown() {
            print(callsite, log.module(), &values);
        }
    }));
}
