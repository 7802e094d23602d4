//! Forwarding a loaded module's `tracing` events to the host's subscriber.
//!
//! A loaded library has its own copy of `tracing-core` and so its own global dispatcher,
//! which nobody sets: without this, events inside a module vanish. [`install`] sets that
//! dispatcher to a subscriber that hands each event (level, target, fields) to the host
//! through its [`HostApi`](super::HostApi). Only a global default is set, never a scoped
//! one, so `tracing` keeps to its fast path and no thread-local with a destructor pins the
//! library.
//!
//! Disabled events cost what they cost in the host: when a callsite first fires, the host
//! says whether it will ever record it (`log_register`), and `tracing` caches the answer in
//! the callsite; the level hint comes from the host's current maximum (`log_max_level`).
//! When the host's filter changes, it calls [`interest_changed`] and every cached answer is
//! asked again. A host too old for those entries is asked on every event instead.
//!
//! Spans are forwarded too, to a host that takes them (`HostApi::spans`): each new span is
//! created by the host's subscriber from a host-side twin of its callsite, with its fields,
//! and the module's span ids are the host's handles, so entering, leaving, recording and
//! closing a span in the module does the same in the host, and the module's events sit in
//! its spans there as a static module's would. With an older host, spans are disabled and
//! events arrive without them.

use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, Level, LevelFilter, Metadata, Subscriber};

use super::{
    LogField, LogMetadata, LogValue, RawBytes, SpanFns, host, interest, level, span_parent,
    value_kind,
};

/// The most field names a callsite passes to the host (the host keeps as many).
const MAX_FIELDS: usize = 32;

/// Makes this library's `tracing` events reach the host. Only for loaded libraries.
pub(crate) fn install() {
    // An error means a dispatcher is already set in this copy of the library: the author
    // set one, or this is not the first instance; either way there is nothing to do.
    let _ = tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(Forwarder));
}

/// The vtable's `log_interest_changed`: the host's filter changed, so every callsite's
/// cached interest and the level hint are asked again.
pub(crate) unsafe extern "C" fn interest_changed() {
    tracing_core::callsite::rebuild_interest_cache();
}

struct Forwarder;

fn level_to_raw(level: &Level) -> u32 {
    match *level {
        Level::ERROR => level::ERROR,
        Level::WARN => level::WARN,
        Level::INFO => level::INFO,
        Level::DEBUG => level::DEBUG,
        Level::TRACE => level::TRACE,
    }
}

fn filter_from_raw(raw: u32) -> LevelFilter {
    match raw {
        0 => LevelFilter::OFF,
        level::ERROR => LevelFilter::ERROR,
        level::WARN => LevelFilter::WARN,
        level::INFO => LevelFilter::INFO,
        level::DEBUG => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Calls `f` with the ABI view of `meta`.
fn with_raw_metadata<R>(meta: &Metadata<'_>, f: impl FnOnce(&LogMetadata) -> R) -> R {
    let mut names = [RawBytes::EMPTY; MAX_FIELDS];
    let mut count = 0;
    for (slot, field) in names.iter_mut().zip(meta.fields().iter()) {
        *slot = RawBytes::from_static(field.name());
        count += 1;
    }
    // SAFETY: every string borrowed here is `meta`'s or static, and `names` outlives `f`,
    // the one call the metadata is used for.
    let raw = unsafe {
        LogMetadata::new(
            meta as *const Metadata<'_> as usize,
            level_to_raw(meta.level()),
            RawBytes::new(meta.target().as_bytes()),
            RawBytes::from_static(meta.name()),
            RawBytes::new(meta.module_path().unwrap_or("").as_bytes()),
            RawBytes::new(meta.file().unwrap_or("").as_bytes()),
            meta.line().unwrap_or(0),
            &names[..count],
        )
    };
    f(&raw)
}

/// The id of a span the host did not record: every call about it stays in the module.
/// (The host's handles are never 0 nor `u64::MAX`.)
const NOT_RECORDED: u64 = u64::MAX;

/// The ABI's parent of a span or event: the root, an explicit span, or the current one.
fn raw_parent(is_root: bool, parent: Option<&Id>) -> u64 {
    match parent {
        // A parent the host did not record: in no span, as `tracing` places a span whose
        // parent is disabled.
        Some(id) if id.into_u64() == NOT_RECORDED => span_parent::ROOT,
        Some(id) => id.into_u64(),
        None if is_root => span_parent::ROOT,
        None => span_parent::CURRENT,
    }
}

/// Calls `f` with the host's span entries for span `id`, if the host recorded it.
fn with_span(id: &Id, f: impl FnOnce(*const std::ffi::c_void, SpanFns, u64)) {
    let handle = id.into_u64();
    if handle == NOT_RECORDED {
        return;
    }
    host::with_host(|host| {
        if let Some(spans) = host.spans() {
            f(host.ctx(), spans, handle);
        }
    });
}

impl Subscriber for Forwarder {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        let answer = host::with_host(|host| {
            let register = if meta.is_span() {
                // A host that does not take spans: none is ever recorded.
                host.spans()?.register
            } else {
                match host.log_register() {
                    Some(register) => register,
                    // An older host: ask every time.
                    None => return Some(interest::SOMETIMES),
                }
            };
            // SAFETY: the metadata lives for this call; `ctx` is the host's own.
            Some(with_raw_metadata(meta, |raw| unsafe {
                register(host.ctx(), raw)
            }))
        });
        match answer {
            // Detached (the host will never hear from this library again), or a span for a
            // host without spans.
            None | Some(None) => Interest::never(),
            Some(Some(interest::NEVER)) => Interest::never(),
            Some(Some(interest::ALWAYS)) => Interest::always(),
            // One whose filter depends on more than the callsite.
            Some(Some(_)) => Interest::sometimes(),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let raw = host::with_host(|host| match host.log_max_level() {
            // SAFETY: `ctx` is the host's own.
            Some(max_level) => unsafe { max_level(host.ctx()) },
            None => host.max_log_level_hint(),
        });
        Some(filter_from_raw(raw.unwrap_or(0)))
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        host::with_host(|host| {
            let enabled = if meta.is_span() {
                // A host without spans: say no early, so their fields are never recorded.
                host.spans()?.enabled
            } else {
                host.log_enabled()
            };
            // SAFETY: `raw` and everything it points to live for this call.
            Some(with_raw_metadata(meta, |raw| unsafe {
                enabled(host.ctx(), raw)
            }))
        })
        .flatten()
        .unwrap_or(false)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = FieldRecorder::default();
        span.record(&mut fields);
        let raw_fields = fields.to_raw();
        let parent = raw_parent(span.is_root(), span.parent());
        let handle = host::with_host(|host| {
            let spans = host.spans()?;
            Some(with_raw_metadata(span.metadata(), |raw| {
                // SAFETY: `raw`, `raw_fields` and the text they point to live for this call.
                unsafe {
                    (spans.new)(
                        host.ctx(),
                        raw,
                        raw_fields.as_ptr(),
                        raw_fields.len(),
                        parent,
                    )
                }
            }))
        })
        .flatten()
        .filter(|handle| *handle != 0)
        .unwrap_or(NOT_RECORDED);
        Id::from_u64(handle)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut fields = FieldRecorder::default();
        values.record(&mut fields);
        let raw_fields = fields.to_raw();
        with_span(span, |ctx, spans, handle| {
            // SAFETY: `raw_fields` and the text they point to live for this call.
            unsafe { (spans.record)(ctx, handle, raw_fields.as_ptr(), raw_fields.len()) }
        });
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        if follows.into_u64() == NOT_RECORDED {
            return;
        }
        // SAFETY: `ctx` is the host's own.
        with_span(span, |ctx, spans, handle| unsafe {
            (spans.follows_from)(ctx, handle, follows.into_u64())
        });
    }

    fn event(&self, event: &Event<'_>) {
        if !host::is_attached() {
            return;
        }
        let meta = event.metadata();
        let mut fields = FieldRecorder::default();
        event.record(&mut fields);
        let raw_fields = fields.to_raw();
        let parent = raw_parent(event.is_root(), event.parent());
        host::with_host(|host| {
            let (fields, len) = (raw_fields.as_ptr(), raw_fields.len());
            match host.spans() {
                Some(spans) if parent != span_parent::CURRENT => {
                    // SAFETY: `raw`, `raw_fields` and the text they point to live for this
                    // call.
                    with_raw_metadata(meta, |raw| unsafe {
                        (spans.event_in)(host.ctx(), raw, fields, len, parent)
                    })
                }
                _ => {
                    let log_event = host.log_event();
                    // SAFETY: as above.
                    with_raw_metadata(meta, |raw| unsafe {
                        log_event(host.ctx(), raw, fields, len)
                    })
                }
            }
        });
    }

    fn enter(&self, span: &Id) {
        // SAFETY: `ctx` is the host's own.
        with_span(span, |ctx, spans, handle| unsafe {
            (spans.enter)(ctx, handle)
        });
    }

    fn exit(&self, span: &Id) {
        // SAFETY: `ctx` is the host's own.
        with_span(span, |ctx, spans, handle| unsafe {
            (spans.exit)(ctx, handle)
        });
    }

    fn clone_span(&self, span: &Id) -> Id {
        // SAFETY: `ctx` is the host's own.
        with_span(span, |ctx, spans, handle| unsafe {
            (spans.clone)(ctx, handle)
        });
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let mut closed = false;
        with_span(&span, |ctx, spans, handle| {
            // SAFETY: `ctx` is the host's own.
            closed = unsafe { (spans.close)(ctx, handle) }
        });
        closed
    }
}

#[derive(Default)]
struct FieldRecorder {
    text: String,
    values: Vec<(&'static str, u32, u64, std::ops::Range<usize>)>,
}

impl FieldRecorder {
    fn push_text(&mut self, field: &Field, kind: u32, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        self.values
            .push((field.name(), kind, 0, start..self.text.len()));
    }

    fn to_raw(&self) -> Vec<LogField> {
        self.values
            .iter()
            .map(|(name, kind, bits, range)| LogField {
                name: RawBytes::from_static(name),
                value: LogValue {
                    kind: *kind,
                    bits: *bits,
                    text: RawBytes::new(self.text[range.clone()].as_bytes()),
                },
            })
            .collect()
    }
}

impl Visit for FieldRecorder {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push_text(field, value_kind::DEBUG, |s| {
            let _ = write!(s, "{value:?}");
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push_text(field, value_kind::STR, |s| s.push_str(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.values
            .push((field.name(), value_kind::I64, value as u64, 0..0));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.values
            .push((field.name(), value_kind::U64, value, 0..0));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.values
            .push((field.name(), value_kind::F64, value.to_bits(), 0..0));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.values
            .push((field.name(), value_kind::BOOL, u64::from(value), 0..0));
    }
}
