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
//! Spans are not forwarded: events inside a module's span reach the host without it.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, Level, LevelFilter, Metadata, Subscriber};

use super::{LogField, LogMetadata, LogValue, RawBytes, host, interest, level, value_kind};

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

impl Subscriber for Forwarder {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_span() {
            return Interest::never();
        }
        let answer = host::with_host(|host| {
            let register = host.log_register()?;
            // SAFETY: the metadata lives for this call; `ctx` is the host's own.
            Some(with_raw_metadata(meta, |raw| unsafe {
                register(host.ctx(), raw)
            }))
        });
        match answer {
            // Detached: the host will never hear from this library again.
            None => Interest::never(),
            Some(Some(interest::NEVER)) => Interest::never(),
            Some(Some(interest::ALWAYS)) => Interest::always(),
            // An older host, or one whose filter depends on more than the callsite.
            Some(_) => Interest::sometimes(),
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
        // Spans are not forwarded; say no early so their fields are never recorded.
        if meta.is_span() {
            return false;
        }
        host::with_host(|host| {
            let enabled = host.log_enabled();
            // SAFETY: `raw` and everything it points to live for this call.
            with_raw_metadata(meta, |raw| unsafe { enabled(host.ctx(), raw) })
        })
        .unwrap_or(false)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Id::from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if !host::is_attached() {
            return;
        }
        let meta = event.metadata();
        let mut fields = FieldRecorder::default();
        event.record(&mut fields);
        let raw_fields = fields.to_raw();
        host::with_host(|host| {
            let log_event = host.log_event();
            with_raw_metadata(meta, |raw| {
                // SAFETY: `raw`, `raw_fields` and the text they point to live for this call.
                unsafe { log_event(host.ctx(), raw, raw_fields.as_ptr(), raw_fields.len()) }
            })
        });
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
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
