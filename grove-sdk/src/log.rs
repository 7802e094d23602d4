//! Forwarding a loaded module's `tracing` events to the host's subscriber.
//!
//! A loaded library has its own copy of `tracing-core` and so its own global dispatcher,
//! which nobody sets: without this, events inside a module vanish. [`install`] sets that
//! dispatcher to a subscriber that hands each event (level, target, fields) to the host
//! through [`HostApi`]. Only a global default is set, never a scoped one, so `tracing`
//! keeps to its fast path and no thread-local with a destructor pins the library.
//!
//! Spans are not forwarded: events inside a module's span reach the host without it.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, Level, LevelFilter, Metadata, Subscriber};

use crate::abi::{self, HostApi, LogField, LogMetadata, LogValue, RawBytes};

/// Makes this library's `tracing` events reach the host. Only for loaded libraries.
///
/// # Safety
/// `host` must stay valid, at the same address, until the library is unloaded.
pub(crate) unsafe fn install(host: *const HostApi) {
    let forwarder = Forwarder { host };
    // An error means a dispatcher is already set in this copy of the library: the author
    // set one, or this is not the first instance; either way there is nothing to do.
    let _ = tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(forwarder));
}

struct Forwarder {
    host: *const HostApi,
}

// SAFETY: the host guarantees `HostApi` may be used from any thread while the library is
// loaded (see `abi::CreateFn`), and `install`'s caller that it outlives the library.
unsafe impl Send for Forwarder {}
// SAFETY: as above.
unsafe impl Sync for Forwarder {}

impl Forwarder {
    fn host(&self) -> &HostApi {
        // SAFETY: `install`'s caller guarantees the pointer is valid while the library is
        // loaded, and this code only runs while it is.
        unsafe { &*self.host }
    }
}

fn level_to_raw(level: &Level) -> u32 {
    match *level {
        Level::ERROR => abi::level::ERROR,
        Level::WARN => abi::level::WARN,
        Level::INFO => abi::level::INFO,
        Level::DEBUG => abi::level::DEBUG,
        Level::TRACE => abi::level::TRACE,
    }
}

fn filter_from_raw(raw: u32) -> LevelFilter {
    match raw {
        0 => LevelFilter::OFF,
        abi::level::ERROR => LevelFilter::ERROR,
        abi::level::WARN => LevelFilter::WARN,
        abi::level::INFO => LevelFilter::INFO,
        abi::level::DEBUG => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Calls `f` with the ABI view of `meta`.
fn with_raw_metadata<R>(meta: &Metadata<'_>, f: impl FnOnce(&LogMetadata) -> R) -> R {
    let names: Vec<RawBytes> = meta
        .fields()
        .iter()
        .map(|field| RawBytes::from_static(field.name()))
        .collect();
    let raw = LogMetadata {
        id: meta as *const Metadata<'_> as usize,
        level: level_to_raw(meta.level()),
        target: RawBytes::new(meta.target().as_bytes()),
        name: RawBytes::from_static(meta.name()),
        module_path: RawBytes::new(meta.module_path().unwrap_or("").as_bytes()),
        file: RawBytes::new(meta.file().unwrap_or("").as_bytes()),
        line: meta.line().unwrap_or(0),
        field_names: names.as_ptr(),
        field_count: names.len(),
    };
    f(&raw)
}

impl Subscriber for Forwarder {
    fn register_callsite(&self, _meta: &'static Metadata<'static>) -> Interest {
        // The host's filter may change while the library is loaded: ask it every time.
        Interest::sometimes()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(filter_from_raw(self.host().max_log_level))
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        // Spans are not forwarded; say no early so their fields are never recorded.
        if meta.is_span() {
            return false;
        }
        let host = self.host();
        with_raw_metadata(meta, |raw| {
            // SAFETY: `raw` and everything it points to live for this call.
            unsafe { (host.log_enabled)(host.ctx, raw) }
        })
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Id::from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut fields = FieldRecorder::default();
        event.record(&mut fields);
        let raw_fields = fields.to_raw();
        let host = self.host();
        with_raw_metadata(meta, |raw| {
            // SAFETY: `raw`, `raw_fields` and the text they point to live for this call.
            unsafe { (host.log_event)(host.ctx, raw, raw_fields.as_ptr(), raw_fields.len()) }
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
        self.push_text(field, abi::value_kind::DEBUG, |s| {
            let _ = write!(s, "{value:?}");
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push_text(field, abi::value_kind::STR, |s| s.push_str(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.values
            .push((field.name(), abi::value_kind::I64, value as u64, 0..0));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.values
            .push((field.name(), abi::value_kind::U64, value, 0..0));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.values
            .push((field.name(), abi::value_kind::F64, value.to_bits(), 0..0));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.values
            .push((field.name(), abi::value_kind::BOOL, u64::from(value), 0..0));
    }
}
