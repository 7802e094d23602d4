//! The host's end of module logging: the [`HostApi`] handed to each loaded library, and the
//! re-emission of its events into the host's own `tracing` dispatcher.
//!
//! A module's event arrives as plain data (level, target, file, line, field names and
//! values). The host gives each distinct callsite a `'static` twin, built once and interned
//! by content, so that a rebuilt library logging from the same place reuses it, and the
//! host's subscriber (fmt, EnvFilter, ...) sees an ordinary event with the module's level,
//! target and fields, plus a `module` field naming the module. Interned callsites are never
//! freed: their number is bounded by the distinct log statements ever loaded.
//!
//! Disabled events must cost a module nothing: the module checks the host's level hint
//! (`log_max_level`, the host's `LevelFilter::current()`) before anything else, as the
//! host's own macros do. When the host's filter changes (a new subscriber, a reload of its
//! filter), `tracing-core` rebuilds every callsite's interest and the level; a callsite
//! registered here counts those rebuilds ([`interest_epoch`]), and each loaded library
//! whose answers are older is told to ask again before it next runs. Whether an event
//! above that level is recorded is asked of the calling thread's subscriber every time
//! (see [`HostCallsite::enabled`]).
//!
//! While the host's `tracing` records nothing and its engine prints grove's own lines
//! ([`crate::console`]), events at `INFO` and above are printed there instead.

use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

use grove::abi::{self, HostApi, LogField, LogMetadata, RawBytes, interest};

use super::host_spans::HostSpans;
use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::{FieldSet, Value, display};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, Kind, Level, Metadata};

/// The most fields an event keeps (the module's, plus `module`); more are dropped.
const MAX_FIELDS: usize = 32;

/// The name of the field that carries the module's name.
const MODULE_FIELD: &str = "module";

/// Per-library logging context: `HostApi::ctx` points here.
#[derive(Debug)]
pub(crate) struct ModuleLog {
    module: String,
    /// The module's spans, by the handles it was given.
    spans: HostSpans,
    /// The module's callsite address -> its interned twin. Valid while the library is
    /// loaded, which is as long as this lives.
    by_id: RwLock<HashMap<usize, &'static HostCallsite>>,
}

/// A `HostApi` and the context it points to, kept at a stable address (boxed) for as long
/// as the library is loaded.
#[derive(Debug)]
pub(crate) struct HostLink {
    api: Box<HostApi>,
    _log: Box<ModuleLog>,
}

impl HostLink {
    pub(crate) fn new(module: &str) -> Self {
        let log = Box::new(ModuleLog {
            module: module.to_owned(),
            spans: HostSpans::default(),
            by_id: RwLock::new(HashMap::new()),
        });
        watch_interest();
        // SAFETY: every function takes the `ModuleLog` boxed next to the table as `ctx`,
        // and `HostLink` keeps both at their addresses for as long as it lives; the
        // library is detached (or known unmapped) before a `HostLink` is dropped.
        let api = unsafe {
            HostApi::new(
                (&*log as *const ModuleLog).cast::<c_void>(),
                log_enabled,
                log_event,
                Some(log_register),
                Some(log_max_level),
                Some(crate::bus::BUS_FNS),
            )
            .with_spans(super::host_spans::SPAN_FNS)
        };
        let api = match test_api_size() {
            // SAFETY: a shorter size only hides entries; a larger one is never read past
            // this module's own entries by the SDK's size-checked view.
            Some(size) => Box::new(unsafe { api.with_size(size) }),
            None => Box::new(api),
        };
        Self { api, _log: log }
    }

    /// The table to hand to `create_module`. Valid while `self` lives.
    pub(crate) fn api(&self) -> *const HostApi {
        &*self.api
    }
}

/// The size the host claims for its table, when a compatibility test sets one: what a host
/// built with an older or newer SDK shows a module.
fn test_api_size() -> Option<usize> {
    match TEST_API_SIZE.load(Ordering::Relaxed) {
        0 => None,
        size => Some(size),
    }
}

static TEST_API_SIZE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// For compatibility tests: libraries opened from now on are shown a host table of `size`
/// bytes (`None`: the real size).
pub fn set_test_api_size(size: Option<usize>) {
    TEST_API_SIZE.store(size.unwrap_or(0), Ordering::Relaxed);
}

/// Rebuilds of the host's callsite interest so far.
static INTEREST_EPOCH: AtomicU64 = AtomicU64::new(0);

/// How many times the host's filter has changed since the first library was loaded. A
/// library that last asked at an older epoch is told to ask again.
///
/// The host's level hint is part of it: `tracing-core` sets the new maximum level only
/// after it has told every callsite (and so bumped the counter), and a library that asked
/// in between must ask again.
pub(crate) fn interest_epoch() -> u64 {
    let level = match max_level() {
        None => 0,
        Some(level) => 1 + level_to_raw(level) as u64,
    };
    INTEREST_EPOCH.load(Ordering::Relaxed) << 3 | level
}

/// The most verbose level shown: the host's, or the console's while it prints module logs.
fn max_level() -> Option<Level> {
    let host = tracing_core::LevelFilter::current();
    if crate::console::module_logs_shown() {
        return host
            .max(tracing_core::LevelFilter::from_level(
                crate::console::MODULE_LEVEL,
            ))
            .into_level();
    }
    host.into_level()
}

fn level_to_raw(level: Level) -> u32 {
    match level {
        Level::ERROR => abi::level::ERROR,
        Level::WARN => abi::level::WARN,
        Level::INFO => abi::level::INFO,
        Level::DEBUG => abi::level::DEBUG,
        Level::TRACE => abi::level::TRACE,
    }
}

/// A callsite registered only to be told when the host's interest is rebuilt.
struct EpochCallsite;

static EPOCH_FIELDS: &[&str] = &[];
static EPOCH_CALLSITE: EpochCallsite = EpochCallsite;
static EPOCH_META: Metadata<'static> = tracing_core::metadata! {
    name: "grove interest epoch",
    target: "grove_runtime::host_log",
    level: Level::TRACE,
    fields: EPOCH_FIELDS,
    callsite: &EPOCH_CALLSITE,
    kind: Kind::HINT,
};

impl Callsite for EpochCallsite {
    fn set_interest(&self, _interest: Interest) {
        INTEREST_EPOCH.fetch_add(1, Ordering::Relaxed);
    }

    fn metadata(&self) -> &Metadata<'_> {
        &EPOCH_META
    }
}

/// Registers the epoch callsite, once.
fn watch_interest() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| tracing_core::callsite::register(&EPOCH_CALLSITE));
}

/// A host-side callsite standing in for one of a module's.
pub(crate) struct HostCallsite {
    meta: OnceLock<Metadata<'static>>,
}

impl std::fmt::Debug for HostCallsite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCallsite")
            .field("meta", &self.meta.get())
            .finish()
    }
}

impl Callsite for HostCallsite {
    /// Not kept: see [`HostCallsite::enabled`].
    fn set_interest(&self, _interest: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        self.meta
            .get()
            .expect("a host callsite is registered only once built")
    }
}

impl HostCallsite {
    /// Whether the calling thread's subscriber records this callsite now.
    ///
    /// Asked of that subscriber every time, never taken from the interest `tracing-core`
    /// cached: a host callsite is shared by every thread and library that logs from the
    /// same place, and that interest was worked out on whichever thread registered it (with
    /// a single subscriber, that thread's own default), so it can be wrong for another
    /// thread with a subscriber of its own. Disabled events still cost a module nothing:
    /// most are below the host's level hint, which the module checks first.
    pub(crate) fn enabled(&'static self) -> bool {
        tracing_core::dispatcher::get_default(|d| d.enabled(self.metadata()))
    }
}

/// What makes two module callsites the same for the host.
#[derive(PartialEq, Eq, Hash, Clone)]
struct CallsiteKey {
    /// A span's callsite, or an event's.
    span: bool,
    level: u32,
    target: String,
    name: String,
    module_path: String,
    file: String,
    line: u32,
    fields: Vec<String>,
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn level_from_raw(raw: u32) -> Level {
    match raw {
        abi::level::ERROR => Level::ERROR,
        abi::level::WARN => Level::WARN,
        abi::level::INFO => Level::INFO,
        abi::level::DEBUG => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// The twin, with the `module` field, of a callsite of the host's own `tracing`: what a
/// static module's event is given so that it reads as a loaded module's (see
/// [`crate::static_log`]). The same log statement gets the same twin either way.
pub(crate) fn twin_of(meta: &Metadata<'_>) -> &'static HostCallsite {
    intern(CallsiteKey {
        span: meta.is_span(),
        level: level_to_raw(*meta.level()),
        target: meta.target().to_owned(),
        name: meta.name().to_owned(),
        module_path: meta.module_path().unwrap_or("").to_owned(),
        file: meta.file().unwrap_or("").to_owned(),
        line: meta.line().unwrap_or(0),
        fields: meta.fields().iter().map(|f| f.name().to_owned()).collect(),
    })
}

fn intern(key: CallsiteKey) -> &'static HostCallsite {
    static INTERNED: Mutex<Option<HashMap<CallsiteKey, &'static HostCallsite>>> = Mutex::new(None);
    let mut interned = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
    let interned = interned.get_or_insert_with(HashMap::new);
    if let Some(callsite) = interned.get(&key) {
        return callsite;
    }
    let callsite: &'static HostCallsite = Box::leak(Box::new(HostCallsite {
        meta: OnceLock::new(),
    }));
    let mut names: Vec<&'static str> = key
        .fields
        .iter()
        .take(MAX_FIELDS - 1)
        .map(|f| leak(f))
        .collect();
    // An event says which module it comes from; a span, as a static module's, does not.
    if !key.span && !names.contains(&MODULE_FIELD) {
        names.push(MODULE_FIELD);
    }
    let names: &'static [&'static str] = Box::leak(names.into_boxed_slice());
    let opt = |s: &str| (!s.is_empty()).then(|| leak(s));
    let meta = Metadata::new(
        leak(&key.name),
        leak(&key.target),
        level_from_raw(key.level),
        opt(&key.file),
        (key.line != 0).then_some(key.line),
        opt(&key.module_path),
        FieldSet::new(names, Identifier(callsite)),
        if key.span { Kind::SPAN } else { Kind::EVENT },
    );
    let _ = callsite.meta.set(meta);
    tracing_core::callsite::register(callsite);
    interned.insert(key, callsite);
    callsite
}

impl ModuleLog {
    /// The module's name.
    pub(super) fn module(&self) -> &str {
        &self.module
    }

    /// The module's spans the host's subscriber holds.
    pub(super) fn spans(&self) -> &HostSpans {
        &self.spans
    }

    /// The host twin of the module callsite `meta`, an event's or (`span`) a span's.
    ///
    /// # Safety
    /// `meta` and what it points to must be valid for this call.
    pub(super) unsafe fn callsite(&self, meta: &LogMetadata, span: bool) -> &'static HostCallsite {
        if let Some(callsite) = self
            .by_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&meta.id())
        {
            return callsite;
        }
        // SAFETY: the module passes strings valid for this call.
        let text = |raw: &RawBytes| unsafe { String::from_utf8_lossy(raw.as_slice()).into_owned() };
        // SAFETY: the module passes its field names valid for this call.
        let names = unsafe { meta.field_names() };
        let key = CallsiteKey {
            span,
            level: meta.level(),
            target: text(&meta.target()),
            name: text(&meta.name()),
            module_path: text(&meta.module_path()),
            file: text(&meta.file()),
            line: meta.line(),
            fields: names.iter().map(text).collect(),
        };
        let callsite = intern(key);
        self.by_id
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(meta.id(), callsite);
        callsite
    }
}

unsafe extern "C" fn log_enabled(ctx: *const c_void, meta: &LogMetadata) -> bool {
    // A panicking subscriber must not unwind into the module.
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the `ModuleLog` of the `HostLink` this table belongs to, alive
        // while the library is loaded; `meta` is valid for this call.
        let log = unsafe { &*ctx.cast::<ModuleLog>() };
        // SAFETY: as above.
        let callsite = unsafe { log.callsite(meta, false) };
        callsite.enabled()
            || (level_from_raw(meta.level()) <= crate::console::MODULE_LEVEL
                && crate::console::module_logs_shown())
    }))
    .unwrap_or(false)
}

/// "Ask every time", for the reason given on [`HostCallsite::enabled`]: no answer about a
/// callsite holds for every thread of the host. The entry lets a host with lasting answers
/// give them; the level hint (`log_max_level`) is what keeps disabled events free here.
unsafe extern "C" fn log_register(_ctx: *const c_void, _meta: &LogMetadata) -> u32 {
    interest::SOMETIMES
}

unsafe extern "C" fn log_max_level(_ctx: *const c_void) -> u32 {
    max_level().map_or(0, level_to_raw)
}

/// A field value from a module, as the host records it.
pub(crate) enum HostValue<'a> {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Str(&'a str),
    Debug(&'a str),
}

unsafe extern "C" fn log_event(
    ctx: *const c_void,
    meta: &LogMetadata,
    fields: *const LogField,
    len: usize,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `log_enabled`.
        let log = unsafe { &*ctx.cast::<ModuleLog>() };
        // SAFETY: as in `log_enabled`.
        let callsite = unsafe { log.callsite(meta, false) };
        // SAFETY: the module passes `len` fields valid for this call.
        let values = unsafe { decode_fields(fields, len) };
        emit(callsite, &log.module, &values, None);
        if crate::console::module_logs_shown() {
            print(callsite, &log.module, &values);
        }
    }));
}

/// The `len` fields at `fields`, decoded.
///
/// # Safety
/// `fields` must point to `len` fields whose names and text are valid for `'a`.
pub(super) unsafe fn decode_fields<'a>(
    fields: *const LogField,
    len: usize,
) -> Vec<(&'a str, HostValue<'a>)> {
    let fields: &[LogField] = if len == 0 || fields.is_null() {
        &[]
    } else {
        // SAFETY: forwarded.
        unsafe { std::slice::from_raw_parts(fields, len) }
    };
    // SAFETY: field names and text values are valid for `'a`.
    fields
        .iter()
        .map(|f| unsafe { (utf8(&f.name), decode(f)) })
        .collect()
}

/// # Safety
/// `raw` must be valid for `'a`.
unsafe fn utf8<'a>(raw: &RawBytes) -> &'a str {
    // SAFETY: forwarded.
    unsafe { raw.as_str() }.unwrap_or("<not utf-8>")
}

/// # Safety
/// The field's text must be valid for `'a`.
unsafe fn decode<'a>(field: &LogField) -> HostValue<'a> {
    let v = &field.value;
    match v.kind {
        abi::value_kind::I64 => HostValue::I64(v.bits as i64),
        abi::value_kind::U64 => HostValue::U64(v.bits),
        abi::value_kind::F64 => HostValue::F64(f64::from_bits(v.bits)),
        abi::value_kind::BOOL => HostValue::Bool(v.bits != 0),
        // SAFETY: forwarded.
        abi::value_kind::STR => HostValue::Str(unsafe { utf8(&v.text) }),
        // SAFETY: forwarded.
        _ => HostValue::Debug(unsafe { utf8(&v.text) }),
    }
}

/// Prints a module's event on the console (see [`crate::console`]).
pub(crate) fn print(
    callsite: &'static HostCallsite,
    module: &str,
    values: &[(&str, HostValue<'_>)],
) {
    let level = *callsite.metadata().level();
    if level > crate::console::MODULE_LEVEL {
        return;
    }
    let shown: Vec<(&str, String)> = values
        .iter()
        .map(|(name, value)| {
            let text = match value {
                HostValue::I64(v) => v.to_string(),
                HostValue::U64(v) => v.to_string(),
                HostValue::F64(v) => v.to_string(),
                HostValue::Bool(v) => v.to_string(),
                HostValue::Str(v) if *name == MESSAGE_FIELD => (*v).to_owned(),
                HostValue::Str(v) => format!("{v:?}"),
                HostValue::Debug(v) => (*v).to_owned(),
            };
            (*name, text)
        })
        .collect();
    let fields: Vec<(&str, &dyn std::fmt::Display)> = shown
        .iter()
        .map(|(name, text)| (*name, text as &dyn std::fmt::Display))
        .collect();
    crate::console::module_event(level, module, &fields);
}

/// The name `tracing` gives an event's message.
const MESSAGE_FIELD: &str = "message";

/// Dispatches an event of `callsite` with `values` and the module's name, in the span
/// `parent` (`None`: the current one; `Some(None)`: none).
pub(super) fn emit(
    callsite: &'static HostCallsite,
    module: &str,
    values: &[(&str, HostValue<'_>)],
    parent: Option<Option<tracing_core::span::Id>>,
) {
    with_value_set(
        callsite,
        Some(module),
        values,
        |meta, value_set| match parent {
            None => Event::dispatch(meta, value_set),
            Some(parent) => Event::child_of(parent, meta, value_set),
        },
    );
}

/// Calls `f` with `callsite`'s metadata and `values` as its value set, plus the module's
/// name when `module` is given and the callsite has the field. Values of fields the
/// callsite does not have are left out; `f` is not called for a callsite without fields.
pub(crate) fn with_value_set(
    callsite: &'static HostCallsite,
    module: Option<&str>,
    values: &[(&str, HostValue<'_>)],
    f: impl FnOnce(&'static Metadata<'static>, &tracing_core::field::ValueSet<'_>),
) {
    let meta: &'static Metadata<'static> = callsite.metadata();
    let field_set = meta.fields();
    let Some(any_field) = field_set.iter().next() else {
        return;
    };
    let debug_values: Vec<_> = values
        .iter()
        .map(|(_, v)| match v {
            HostValue::Debug(text) => Some(display(*text)),
            _ => None,
        })
        .collect();
    let mut entries: [(tracing_core::Field, Option<&dyn Value>); MAX_FIELDS] =
        std::array::from_fn(|_| (any_field.clone(), None));
    let mut n = 0;
    for ((name, value), debug) in values.iter().zip(&debug_values) {
        if n == MAX_FIELDS - 1 {
            break;
        }
        let Some(field) = field_set.field(name) else {
            continue;
        };
        let value: &dyn Value = match (value, debug) {
            (HostValue::I64(v), _) => v,
            (HostValue::U64(v), _) => v,
            (HostValue::F64(v), _) => v,
            (HostValue::Bool(v), _) => v,
            (HostValue::Str(v), _) => v,
            (HostValue::Debug(_), Some(d)) => d,
            (HostValue::Debug(v), None) => v,
        };
        entries[n] = (field, Some(value));
        n += 1;
    }
    let module_value = module.map(display);
    if let Some(module_value) = &module_value
        && let Some(field) = field_set.field(MODULE_FIELD)
        && !values.iter().any(|(name, _)| *name == MODULE_FIELD)
    {
        entries[n] = (field, Some(module_value as &dyn Value));
    }
    let refs: [(&tracing_core::Field, Option<&dyn Value>); MAX_FIELDS] =
        std::array::from_fn(|i| (&entries[i].0, entries[i].1));
    let value_set = field_set.value_set(&refs);
    f(meta, &value_set);
}
