//! The function tables: [`VTable`] (what a module offers the host), [`HostApi`] (what the
//! host offers a module), the [`RawInstance`] that carries a vtable, and the size-checked
//! views ([`VTableRef`], [`HostApiRef`]) through which each side reads the other's table.

use std::ffi::c_void;
use std::mem::offset_of;

use super::{
    ABI_VERSION, ByteSink, LogField, LogMetadata, RawBytes, RawInbox, RawMessage, StateBuffer,
    Status, level,
};

/// Timing of the frame being run, as the host measured it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// Frame number, from 0.
    pub frame: u64,
    /// Time since the previous frame started, in nanoseconds.
    pub delta_ns: u64,
    /// Time since the engine started, in nanoseconds.
    pub elapsed_ns: u64,
}

/// Builds an instance. Exported as `grove_create_module__<suffix>`.
///
/// The module writes `*out` (its vtable first, before any of the author's code runs, so
/// that the host can detach the library even when creating fails); on [`Status::OK`] it
/// also holds the instance. `host` must stay valid, at the same address, until the host
/// detaches the library (the vtable's `detach`) or, for a library without that entry,
/// until the library is unmapped.
pub type CreateFn = unsafe extern "C" fn(
    host: *const HostApi,
    out: *mut RawInstance,
    error: ByteSink<'_>,
) -> Status;

/// Signature of `init`, `process` and `shutdown`.
pub type FrameFn =
    unsafe extern "C" fn(this: *mut c_void, frame: &FrameInfo, error: ByteSink<'_>) -> Status;

/// Signature of `destroy`.
pub type DestroyFn = unsafe extern "C" fn(this: *mut c_void, error: ByteSink<'_>) -> Status;

/// Signature of `save_state`.
pub type SaveStateFn = unsafe extern "C" fn(
    this: *mut c_void,
    format: u32,
    out: ByteSink<'_>,
    error: ByteSink<'_>,
) -> Status;

/// Signature of `load_state`.
pub type LoadStateFn = unsafe extern "C" fn(
    this: *mut c_void,
    format: u32,
    state: RawBytes,
    error: ByteSink<'_>,
) -> Status;

/// Signature of `restore_state`: as `load_state`, for a state saved by version
/// `from_version` of the module (0: unknown), and on [`Status::OK`] writes to `out` what
/// became of the state's fields (a [`FieldReport`](crate::state::FieldReport), as
/// [`FieldReport::encode`](crate::state::FieldReport::encode) writes it). On failure the
/// instance keeps the state it had.
pub type RestoreStateFn = unsafe extern "C" fn(
    this: *mut c_void,
    format: u32,
    state: RawBytes,
    from_version: u32,
    out: ByteSink<'_>,
    error: ByteSink<'_>,
) -> Status;

/// Signature of `save_state_into`: as `save_state`, written in place into a buffer the host
/// provides (the module reserves exactly the state's size, then writes it), rather than
/// handed over in a buffer of the module's for the host to copy.
pub type SaveStateIntoFn = unsafe extern "C" fn(
    this: *mut c_void,
    format: u32,
    out: StateBuffer<'_>,
    error: ByteSink<'_>,
) -> Status;

/// Signature of `detach`: the library forgets the host's table and waits up to
/// `timeout_ns` for calls into the host already under way; returns 1 when none is left
/// (the host may free its table), 0 when some still are.
pub type DetachFn = unsafe extern "C" fn(timeout_ns: u64) -> u32;

/// Signature of `configure`: decodes `config` (JSON text of a table) as the module's config
/// type, in `mode` ([`CONFIG_STRICT`](super::CONFIG_STRICT) or
/// [`CONFIG_LENIENT`](super::CONFIG_LENIENT)), and hands it to the module. On
/// [`Status::OK`] writes a [`ConfigApplied`](super::ConfigApplied) to `out`; on
/// [`Status::FAILED`] a [`ConfigIssue`](super::ConfigIssue) to `error`; both as JSON. A
/// refused config leaves the module as it was.
pub type ConfigureFn = unsafe extern "C" fn(
    this: *mut c_void,
    config: RawBytes,
    mode: u32,
    out: ByteSink<'_>,
    error: ByteSink<'_>,
) -> Status;

/// Signature of `health`: writes the module's [`Health`](crate::Health) report to `out`,
/// encoded by [`encode_health`](super::encode_health).
pub type HealthFn =
    unsafe extern "C" fn(this: *mut c_void, out: ByteSink<'_>, error: ByteSink<'_>) -> Status;

/// A notification without arguments (`log_interest_changed`).
pub type NotifyFn = unsafe extern "C" fn();

/// `HostApi::log_enabled`.
pub type LogEnabledFn = unsafe extern "C" fn(ctx: *const c_void, meta: &LogMetadata) -> bool;

/// `HostApi::log_event`.
pub type LogEventFn = unsafe extern "C" fn(
    ctx: *const c_void,
    meta: &LogMetadata,
    fields: *const LogField,
    len: usize,
);

/// `HostApi::log_register`: the host's interest in a callsite, one of
/// [`interest`](super::interest).
pub type LogRegisterFn = unsafe extern "C" fn(ctx: *const c_void, meta: &LogMetadata) -> u32;

/// `HostApi::log_max_level`: the most verbose level the host records now, as in
/// [`level`]; 0 records nothing.
pub type LogMaxLevelFn = unsafe extern "C" fn(ctx: *const c_void) -> u32;

/// `HostApi::bus_subscribe`: subscribes the module being called to `pattern` with
/// `policy` (one of the `BACKPRESSURE_*` constants) and a queue of at most `capacity`
/// messages. Subscribing again to the same pattern replaces its policy and capacity.
pub type BusSubscribeFn = unsafe extern "C" fn(
    ctx: *const c_void,
    pattern: RawBytes,
    policy: u32,
    capacity: u64,
    error: ByteSink<'_>,
) -> Status;

/// `HostApi::bus_unsubscribe`: drops the subscription to `pattern`, if there is one.
pub type BusUnsubscribeFn = unsafe extern "C" fn(ctx: *const c_void, pattern: RawBytes) -> Status;

/// `HostApi::bus_publish`: publishes `message` (valid for the call) from the module being
/// called; it is delivered from the next frame on.
pub type BusPublishFn =
    unsafe extern "C" fn(ctx: *const c_void, message: &RawMessage, error: ByteSink<'_>) -> Status;

/// `HostApi::bus_inbox`: the messages delivered to the module being called, for this call.
pub type BusInboxFn = unsafe extern "C" fn(ctx: *const c_void, out: *mut RawInbox) -> Status;

/// `HostApi::bus_report`: tells the host a message could not be encoded or decoded
/// (`kind`, one of the `REPORT_*` constants), on `topic`, saying why.
pub type BusReportFn =
    unsafe extern "C" fn(ctx: *const c_void, kind: u32, topic: RawBytes, message: RawBytes);

/// `HostApi::span_new`: a span from the module's callsite `meta` (a span callsite) with
/// `len` field values at `fields` (valid for the call), under `parent` (one of
/// [`span_parent`](super::span_parent), or a span the host returned). Returns the host's
/// handle for the span, or 0 when the host records nothing of it.
pub type SpanNewFn = unsafe extern "C" fn(
    ctx: *const c_void,
    meta: &LogMetadata,
    fields: *const LogField,
    len: usize,
    parent: u64,
) -> u64;

/// `HostApi::span_record`: more field values of `span` (valid for the call).
pub type SpanRecordFn =
    unsafe extern "C" fn(ctx: *const c_void, span: u64, fields: *const LogField, len: usize);

/// `HostApi::span_follows_from`: `span` follows from `follows`.
pub type SpanFollowsFromFn = unsafe extern "C" fn(ctx: *const c_void, span: u64, follows: u64);

/// `HostApi::span_enter`, `span_exit` and `span_clone`: the calling thread enters or
/// leaves `span`, or the module made another handle to it.
pub type SpanFn = unsafe extern "C" fn(ctx: *const c_void, span: u64);

/// `HostApi::span_close`: the module dropped a handle to `span`; true when it was the last.
pub type SpanCloseFn = unsafe extern "C" fn(ctx: *const c_void, span: u64) -> bool;

/// `HostApi::log_event_in`: as `log_event`, for an event whose parent is not the current
/// span: `parent` is one of [`span_parent`](super::span_parent) or a span the host
/// returned.
pub type LogEventInFn = unsafe extern "C" fn(
    ctx: *const c_void,
    meta: &LogMetadata,
    fields: *const LogField,
    len: usize,
    parent: u64,
);

/// The span entries of a [`HostApi`], given together: a module's `tracing` spans, recorded
/// by the host's subscriber as its own, and events placed in them. `register` and
/// `enabled` are `log_register` and `log_enabled` for span callsites.
#[derive(Debug, Clone, Copy)]
pub struct SpanFns {
    /// `span_register`.
    pub register: LogRegisterFn,
    /// `span_enabled`.
    pub enabled: LogEnabledFn,
    /// `span_new`.
    pub new: SpanNewFn,
    /// `span_record`.
    pub record: SpanRecordFn,
    /// `span_follows_from`.
    pub follows_from: SpanFollowsFromFn,
    /// `span_enter`.
    pub enter: SpanFn,
    /// `span_exit`.
    pub exit: SpanFn,
    /// `span_clone`.
    pub clone: SpanFn,
    /// `span_close`.
    pub close: SpanCloseFn,
    /// `log_event_in`.
    pub event_in: LogEventInFn,
}

/// The bus entries of a [`HostApi`], given together.
#[derive(Debug, Clone, Copy)]
pub struct BusFns {
    /// `bus_subscribe`.
    pub subscribe: BusSubscribeFn,
    /// `bus_unsubscribe`.
    pub unsubscribe: BusUnsubscribeFn,
    /// `bus_publish`.
    pub publish: BusPublishFn,
    /// `bus_inbox`.
    pub inbox: BusInboxFn,
    /// `bus_report`.
    pub report: BusReportFn,
}

/// A live module instance: an opaque pointer and the functions that act on it.
#[repr(C)]
#[derive(Debug)]
pub struct RawInstance {
    this: *mut c_void,
    vtable: *const VTable,
    schema_fingerprint: u64,
}

impl RawInstance {
    /// No instance: what the host passes to `create_module` to be written.
    pub const EMPTY: RawInstance = RawInstance {
        this: std::ptr::null_mut(),
        vtable: std::ptr::null(),
        schema_fingerprint: 0,
    };

    /// An instance.
    ///
    /// # Safety
    /// `this` must be a value the functions of `vtable` (a `'static` table of the library)
    /// accept, until `destroy` is called on it.
    pub unsafe fn new(this: *mut c_void, vtable: &'static VTable, schema_fingerprint: u64) -> Self {
        Self {
            this,
            vtable,
            schema_fingerprint,
        }
    }

    /// The module's value, owned by the module library; null when none was made.
    pub fn this(&self) -> *mut c_void {
        self.this
    }

    /// The library's function table; null when the module wrote none.
    pub fn vtable(&self) -> *const VTable {
        self.vtable
    }

    /// Hash of the full serde shape of the module's state, or
    /// [`SCHEMA_UNKNOWN`](super::SCHEMA_UNKNOWN).
    pub fn schema_fingerprint(&self) -> u64 {
        self.schema_fingerprint
    }
}

/// The functions of a module instance. Append-only: `size` tells which entries exist.
#[repr(C)]
#[derive(Debug)]
pub struct VTable {
    size: usize,
    destroy: DestroyFn,
    init: FrameFn,
    process: FrameFn,
    shutdown: FrameFn,
    save_state: SaveStateFn,
    load_state: LoadStateFn,
    // ---- appended after version 1's first release ----
    detach: Option<DetachFn>,
    log_interest_changed: Option<NotifyFn>,
    configure: Option<ConfigureFn>,
    health: Option<HealthFn>,
    restore_state: Option<RestoreStateFn>,
    save_state_into: Option<SaveStateIntoFn>,
}

/// The size of the first version 1 [`VTable`]: `size` and the six functions every module
/// has. Everything past it is optional.
pub const VTABLE_MIN_SIZE_V1: usize = offset_of!(VTable, detach);

impl VTable {
    /// A full table.
    ///
    /// # Safety
    /// Each function must do what its field's documentation says, for instances made by the
    /// same library's `create_module`.
    #[allow(clippy::too_many_arguments)]
    pub const unsafe fn new(
        destroy: DestroyFn,
        init: FrameFn,
        process: FrameFn,
        shutdown: FrameFn,
        save_state: SaveStateFn,
        load_state: LoadStateFn,
        detach: Option<DetachFn>,
        log_interest_changed: Option<NotifyFn>,
        configure: Option<ConfigureFn>,
        health: Option<HealthFn>,
        restore_state: Option<RestoreStateFn>,
        save_state_into: Option<SaveStateIntoFn>,
    ) -> Self {
        Self {
            size: size_of::<VTable>(),
            destroy,
            init,
            process,
            shutdown,
            save_state,
            load_state,
            detach,
            log_interest_changed,
            configure,
            health,
            restore_state,
            save_state_into,
        }
    }

    /// The same table claiming `size` bytes: what a module built with an older SDK (a
    /// smaller size) or a newer one (a larger size) shows a host. For compatibility tests.
    ///
    /// # Safety
    /// A host reads up to `size` bytes of the table: a larger size than
    /// `size_of::<VTable>()` must be backed by that much readable memory, or no host may
    /// read past its own entries.
    #[doc(hidden)]
    pub const unsafe fn with_size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }
}

/// A table of another binary, read only as far as its size (its first field) says.
#[derive(Debug)]
struct SizedTable<T> {
    ptr: *const T,
    size: usize,
}

impl<T> Clone for SizedTable<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SizedTable<T> {}

impl<T> SizedTable<T> {
    /// # Safety
    /// `ptr` must point to a table whose first `size` bytes (the value of its first field)
    /// stay readable and unchanged while the returned value is used.
    unsafe fn from_raw(ptr: *const T, min_size: usize) -> Result<Self, usize> {
        // SAFETY: every table starts with its size; the caller guarantees it is readable.
        let size = unsafe { ptr.cast::<usize>().read() };
        if size < min_size {
            return Err(size);
        }
        Ok(Self { ptr, size })
    }

    /// Reads the entry at `offset`, or `None` when the table ends before it.
    fn entry<E: Copy>(&self, offset: usize) -> Option<E> {
        if offset + size_of::<E>() > self.size {
            return None;
        }
        // SAFETY: `from_raw`'s caller guarantees `size` bytes are readable, and the entry
        // lies inside them; every entry is plain data or an (optional) function pointer.
        Some(unsafe { self.ptr.byte_add(offset).cast::<E>().read() })
    }

    /// Reads an appended entry, an optional function: `None` when the table ends before it
    /// or the other side left it empty.
    fn optional<F: Copy>(&self, offset: usize) -> Option<F> {
        self.entry::<Option<F>>(offset).flatten()
    }

    /// Reads a version 1 entry, which every table has.
    fn required<E: Copy>(&self, offset: usize) -> E {
        self.entry(offset)
            .expect("from_raw checked the table holds every version 1 entry")
    }
}

/// A module's [`VTable`] as the host reads it: only the entries its size covers.
#[derive(Clone, Copy, Debug)]
pub struct VTableRef(SizedTable<VTable>);

// SAFETY: a vtable is immutable static data of its library; the functions it holds may be
// called from any thread (a module type is `Send`).
unsafe impl Send for VTableRef {}
// SAFETY: as above.
unsafe impl Sync for VTableRef {}

impl VTableRef {
    /// Reads the table's size and checks it holds at least the version 1 entries;
    /// `Err(size)` when it is shorter.
    ///
    /// # Safety
    /// `ptr` must point to a table whose first `size` bytes (the value of its first field)
    /// stay readable and unchanged while the returned value is used: a library's static,
    /// used while the library is open.
    pub unsafe fn from_raw(ptr: *const VTable) -> Result<Self, usize> {
        // SAFETY: forwarded to the caller.
        unsafe { SizedTable::from_raw(ptr, VTABLE_MIN_SIZE_V1) }.map(Self)
    }

    /// The table's size, as the module knows it.
    pub fn size(&self) -> usize {
        self.0.size
    }

    /// Drops an instance. `this` is invalid afterwards, whatever the status.
    pub fn destroy(&self) -> DestroyFn {
        self.0.required(offset_of!(VTable, destroy))
    }

    /// `Module::init`, after create and after every reload.
    pub fn init(&self) -> FrameFn {
        self.0.required(offset_of!(VTable, init))
    }

    /// `Module::process`, once per frame.
    pub fn process(&self) -> FrameFn {
        self.0.required(offset_of!(VTable, process))
    }

    /// `Module::shutdown`, once when the module leaves for good.
    pub fn shutdown(&self) -> FrameFn {
        self.0.required(offset_of!(VTable, shutdown))
    }

    /// Serialises the state in `format` into `out`.
    pub fn save_state(&self) -> SaveStateFn {
        self.0.required(offset_of!(VTable, save_state))
    }

    /// Replaces the state with `state`, decoded in `format`. On failure the instance keeps
    /// the state it had.
    pub fn load_state(&self) -> LoadStateFn {
        self.0.required(offset_of!(VTable, load_state))
    }

    /// Severs every pointer the library holds to the host (see [`DetachFn`]); `None` for a
    /// library built before the entry existed, which cannot be detached.
    pub fn detach(&self) -> Option<DetachFn> {
        self.0.optional::<DetachFn>(offset_of!(VTable, detach))
    }

    /// Tells the library that the host's log filter changed, so that it asks again which
    /// callsites are enabled; `None` for a library built before the entry existed.
    pub fn log_interest_changed(&self) -> Option<NotifyFn> {
        self.0
            .optional::<NotifyFn>(offset_of!(VTable, log_interest_changed))
    }

    /// Takes a config (see [`ConfigureFn`]); `None` for a module that declares no config
    /// type, or was built before the entry existed.
    pub fn configure(&self) -> Option<ConfigureFn> {
        self.0
            .optional::<ConfigureFn>(offset_of!(VTable, configure))
    }

    /// Reports the module's health (see [`HealthFn`]); `None` for a library built before
    /// the entry existed.
    pub fn health(&self) -> Option<HealthFn> {
        self.0.optional::<HealthFn>(offset_of!(VTable, health))
    }

    /// Restores a state and reports what became of its fields (see [`RestoreStateFn`]);
    /// `None` for a library built before the entry existed (use `load_state`, which
    /// reports nothing).
    pub fn restore_state(&self) -> Option<RestoreStateFn> {
        self.0
            .optional::<RestoreStateFn>(offset_of!(VTable, restore_state))
    }

    /// Saves the state in place into a host buffer (see [`SaveStateIntoFn`]); `None` for a
    /// library built before the entry existed (use `save_state`).
    pub fn save_state_into(&self) -> Option<SaveStateIntoFn> {
        self.0
            .optional::<SaveStateIntoFn>(offset_of!(VTable, save_state_into))
    }
}

/// The size of the [`VTable`] of the SDK before `save_state_into` was appended: what a
/// library built with it shows. For compatibility tests.
#[doc(hidden)]
pub const VTABLE_SIZE_BEFORE_SAVE_STATE_INTO: usize = offset_of!(VTable, save_state_into);

/// The size of the [`VTable`] of the SDK before `restore_state` was appended: what a
/// library built with it shows. For compatibility tests.
#[doc(hidden)]
pub const VTABLE_SIZE_BEFORE_RESTORE_STATE: usize = offset_of!(VTable, restore_state);

/// The size of the [`VTable`] of the SDK before `configure` and `health` were appended.
/// For compatibility tests.
#[doc(hidden)]
pub const VTABLE_SIZE_BEFORE_CONFIGURE: usize = offset_of!(VTable, configure);

/// What the host gives a module: logging and messaging. Append-only.
#[repr(C)]
#[derive(Debug)]
pub struct HostApi {
    size: usize,
    abi_version: u32,
    /// The most verbose level the host may record, as in [`level`]: a hint for modules
    /// that cannot ask `log_max_level`.
    max_log_level: u32,
    ctx: *const c_void,
    log_enabled: LogEnabledFn,
    log_event: LogEventFn,
    // ---- appended after version 1's first release ----
    log_register: Option<LogRegisterFn>,
    log_max_level: Option<LogMaxLevelFn>,
    bus_subscribe: Option<BusSubscribeFn>,
    bus_unsubscribe: Option<BusUnsubscribeFn>,
    bus_publish: Option<BusPublishFn>,
    bus_inbox: Option<BusInboxFn>,
    bus_report: Option<BusReportFn>,
    span_register: Option<LogRegisterFn>,
    span_enabled: Option<LogEnabledFn>,
    span_new: Option<SpanNewFn>,
    span_record: Option<SpanRecordFn>,
    span_follows_from: Option<SpanFollowsFromFn>,
    span_enter: Option<SpanFn>,
    span_exit: Option<SpanFn>,
    span_clone: Option<SpanFn>,
    span_close: Option<SpanCloseFn>,
    log_event_in: Option<LogEventInFn>,
}

/// The size of the first version 1 [`HostApi`]. Everything past it is optional.
pub const HOST_API_MIN_SIZE_V1: usize = offset_of!(HostApi, log_register);

// SAFETY: `HostApi::new`'s caller guarantees `ctx` and the functions may be used from any
// thread while the table is handed out.
unsafe impl Sync for HostApi {}
// SAFETY: as above.
unsafe impl Send for HostApi {}

impl HostApi {
    /// A full table.
    ///
    /// # Safety
    /// Every function must accept `ctx`, from any thread, for as long as a library holds
    /// the table (until it is detached, or unmapped).
    pub unsafe fn new(
        ctx: *const c_void,
        log_enabled: LogEnabledFn,
        log_event: LogEventFn,
        log_register: Option<LogRegisterFn>,
        log_max_level: Option<LogMaxLevelFn>,
        bus: Option<BusFns>,
    ) -> Self {
        Self {
            size: size_of::<HostApi>(),
            abi_version: ABI_VERSION,
            max_log_level: level::TRACE,
            ctx,
            log_enabled,
            log_event,
            log_register,
            log_max_level,
            bus_subscribe: bus.map(|b| b.subscribe),
            bus_unsubscribe: bus.map(|b| b.unsubscribe),
            bus_publish: bus.map(|b| b.publish),
            bus_inbox: bus.map(|b| b.inbox),
            bus_report: bus.map(|b| b.report),
            span_register: None,
            span_enabled: None,
            span_new: None,
            span_record: None,
            span_follows_from: None,
            span_enter: None,
            span_exit: None,
            span_clone: None,
            span_close: None,
            log_event_in: None,
        }
    }

    /// The same table with the span entries.
    ///
    /// # Safety
    /// As for [`HostApi::new`]: every function must accept the table's `ctx`, from any
    /// thread, for as long as a library holds the table.
    pub unsafe fn with_spans(mut self, spans: SpanFns) -> Self {
        self.span_register = Some(spans.register);
        self.span_enabled = Some(spans.enabled);
        self.span_new = Some(spans.new);
        self.span_record = Some(spans.record);
        self.span_follows_from = Some(spans.follows_from);
        self.span_enter = Some(spans.enter);
        self.span_exit = Some(spans.exit);
        self.span_clone = Some(spans.clone);
        self.span_close = Some(spans.close);
        self.log_event_in = Some(spans.event_in);
        self
    }

    /// The same table claiming `size` bytes, as a host built with an older or newer SDK
    /// shows it. For compatibility tests.
    ///
    /// # Safety
    /// As for [`VTable::with_size`].
    #[doc(hidden)]
    pub unsafe fn with_size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }
}

/// The host's [`HostApi`] as a module reads it: only the entries its size covers.
#[derive(Clone, Copy, Debug)]
pub struct HostApiRef(SizedTable<HostApi>);

impl HostApiRef {
    /// Reads the table's size and checks it holds at least the version 1 entries;
    /// `Err(size)` when it is shorter.
    ///
    /// # Safety
    /// `ptr` must point to a table whose first `size` bytes stay readable and unchanged
    /// while the returned value is used.
    pub unsafe fn from_raw(ptr: *const HostApi) -> Result<Self, usize> {
        // SAFETY: forwarded to the caller.
        unsafe { SizedTable::from_raw(ptr, HOST_API_MIN_SIZE_V1) }.map(Self)
    }

    /// The table's size, as the host knows it.
    pub fn size(&self) -> usize {
        self.0.size
    }

    /// The host's ABI version.
    pub fn abi_version(&self) -> u32 {
        self.0.required(offset_of!(HostApi, abi_version))
    }

    /// The host's static level hint, as in [`level`].
    pub fn max_log_level_hint(&self) -> u32 {
        self.0.required(offset_of!(HostApi, max_log_level))
    }

    /// The context every function takes.
    pub fn ctx(&self) -> *const c_void {
        self.0.required(offset_of!(HostApi, ctx))
    }

    /// Whether the host records an event from this callsite now.
    pub fn log_enabled(&self) -> LogEnabledFn {
        self.0.required(offset_of!(HostApi, log_enabled))
    }

    /// Records an event. `fields` points to `len` fields valid for the call.
    pub fn log_event(&self) -> LogEventFn {
        self.0.required(offset_of!(HostApi, log_event))
    }

    /// The host's lasting interest in a callsite; `None` for an older host (ask
    /// `log_enabled` every time).
    pub fn log_register(&self) -> Option<LogRegisterFn> {
        self.0
            .optional::<LogRegisterFn>(offset_of!(HostApi, log_register))
    }

    /// The most verbose level the host records now; `None` for an older host.
    pub fn log_max_level(&self) -> Option<LogMaxLevelFn> {
        self.0
            .optional::<LogMaxLevelFn>(offset_of!(HostApi, log_max_level))
    }

    /// The bus entries; `None` for a host without messaging (all five or none).
    pub fn bus(&self) -> Option<BusFns> {
        let t = &self.0;
        Some(BusFns {
            subscribe: t.optional(offset_of!(HostApi, bus_subscribe))?,
            unsubscribe: t.optional(offset_of!(HostApi, bus_unsubscribe))?,
            publish: t.optional(offset_of!(HostApi, bus_publish))?,
            inbox: t.optional(offset_of!(HostApi, bus_inbox))?,
            report: t.optional(offset_of!(HostApi, bus_report))?,
        })
    }

    /// The span entries; `None` for a host that does not take spans (all ten or none):
    /// the module's spans are then not forwarded, and its events arrive without them.
    pub fn spans(&self) -> Option<SpanFns> {
        let t = &self.0;
        Some(SpanFns {
            register: t.optional(offset_of!(HostApi, span_register))?,
            enabled: t.optional(offset_of!(HostApi, span_enabled))?,
            new: t.optional(offset_of!(HostApi, span_new))?,
            record: t.optional(offset_of!(HostApi, span_record))?,
            follows_from: t.optional(offset_of!(HostApi, span_follows_from))?,
            enter: t.optional(offset_of!(HostApi, span_enter))?,
            exit: t.optional(offset_of!(HostApi, span_exit))?,
            clone: t.optional(offset_of!(HostApi, span_clone))?,
            close: t.optional(offset_of!(HostApi, span_close))?,
            event_in: t.optional(offset_of!(HostApi, log_event_in))?,
        })
    }
}

/// The size of the [`HostApi`] of the SDK before the span entries were appended: what a
/// host built with it shows. For compatibility tests.
#[doc(hidden)]
pub const HOST_API_SIZE_BEFORE_SPANS: usize = offset_of!(HostApi, span_register);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::export::vtable;
    use crate::{Context, Module};

    #[derive(Default, serde::Serialize, serde::Deserialize)]
    struct Probe;

    impl crate::__private::ModuleConfig for Probe {
        const CONFIGURE: Option<ConfigureFn> = None;
    }

    impl crate::__private::ModuleVersion for Probe {
        const VERSION: u32 = 1;
    }

    impl Module for Probe {
        fn process(&mut self, _ctx: &mut Context) {}
    }

    #[test]
    fn a_vtable_is_read_only_as_far_as_its_size() {
        let full = vtable::<Probe>();
        // SAFETY: a full table of this SDK, alive for the test.
        let view = unsafe { VTableRef::from_raw(&full) }.unwrap();
        assert_eq!(view.size(), size_of::<VTable>());
        assert!(view.detach().is_some() && view.log_interest_changed().is_some());
        assert!(view.health().is_some() && view.configure().is_none());
        assert!(view.restore_state().is_some() && view.save_state_into().is_some());

        // What a module built before `save_state_into` shows: everything else.
        // SAFETY: a shorter size only hides entries.
        let prev = unsafe { vtable::<Probe>().with_size(VTABLE_SIZE_BEFORE_SAVE_STATE_INTO) };
        // SAFETY: as above.
        let view = unsafe { VTableRef::from_raw(&prev) }.unwrap();
        assert!(view.save_state_into().is_none() && view.restore_state().is_some());

        // What a module built before `restore_state` shows: everything else.
        // SAFETY: a shorter size only hides entries.
        let prev = unsafe { vtable::<Probe>().with_size(VTABLE_SIZE_BEFORE_RESTORE_STATE) };
        // SAFETY: as above.
        let view = unsafe { VTableRef::from_raw(&prev) }.unwrap();
        assert!(view.restore_state().is_none() && view.health().is_some());
        assert!(view.save_state_into().is_none());

        // What a module built before the appended entries shows: only version 1's.
        // SAFETY: a shorter size only hides entries.
        let old = unsafe { vtable::<Probe>().with_size(VTABLE_MIN_SIZE_V1) };
        // SAFETY: as above.
        let view = unsafe { VTableRef::from_raw(&old) }.unwrap();
        assert!(view.detach().is_none() && view.log_interest_changed().is_none());
        assert!(view.health().is_none() && view.configure().is_none());
        assert!(view.restore_state().is_none() && view.save_state_into().is_none());
        let _required = (view.destroy(), view.process(), view.load_state());

        // Shorter than any grove table: refused with the size found.
        // SAFETY: as above.
        let broken = unsafe { vtable::<Probe>().with_size(8) };
        // SAFETY: as above.
        assert_eq!(unsafe { VTableRef::from_raw(&broken) }.unwrap_err(), 8);
    }

    unsafe extern "C" fn enabled(_ctx: *const c_void, _meta: &LogMetadata) -> bool {
        true
    }
    unsafe extern "C" fn event(_: *const c_void, _: &LogMetadata, _: *const LogField, _: usize) {}
    unsafe extern "C" fn register(_: *const c_void, _: &LogMetadata) -> u32 {
        2
    }

    unsafe extern "C" fn span_new(
        _: *const c_void,
        _: &LogMetadata,
        _: *const LogField,
        _: usize,
        _: u64,
    ) -> u64 {
        0
    }
    unsafe extern "C" fn span_record(_: *const c_void, _: u64, _: *const LogField, _: usize) {}
    unsafe extern "C" fn span_pair(_: *const c_void, _: u64, _: u64) {}
    unsafe extern "C" fn span_one(_: *const c_void, _: u64) {}
    unsafe extern "C" fn span_close(_: *const c_void, _: u64) -> bool {
        false
    }
    unsafe extern "C" fn event_in(
        _: *const c_void,
        _: &LogMetadata,
        _: *const LogField,
        _: usize,
        _: u64,
    ) {
    }
    const SPANS: SpanFns = SpanFns {
        register,
        enabled,
        new: span_new,
        record: span_record,
        follows_from: span_pair,
        enter: span_one,
        exit: span_one,
        clone: span_one,
        close: span_close,
        event_in,
    };

    #[test]
    fn a_host_table_is_read_only_as_far_as_its_size() {
        // SAFETY: the functions ignore their context.
        let full =
            unsafe { HostApi::new(std::ptr::null(), enabled, event, Some(register), None, None) };
        // SAFETY: alive for the test.
        let view = unsafe { HostApiRef::from_raw(&full) }.unwrap();
        assert!(view.log_register().is_some() && view.log_max_level().is_none());
        assert_eq!(view.abi_version(), crate::abi::ABI_VERSION);
        assert!(
            view.spans().is_none(),
            "a table made without its span entries"
        );

        // SAFETY: the functions ignore their context.
        let with_spans = unsafe {
            HostApi::new(std::ptr::null(), enabled, event, None, None, None).with_spans(SPANS)
        };
        // SAFETY: alive for the test.
        let view = unsafe { HostApiRef::from_raw(&with_spans) }.unwrap();
        assert!(view.spans().is_some());
        // What a host built before the span entries shows: none of them.
        // SAFETY: a shorter size only hides entries.
        let before = unsafe {
            HostApi::new(std::ptr::null(), enabled, event, None, None, None)
                .with_spans(SPANS)
                .with_size(HOST_API_SIZE_BEFORE_SPANS)
        };
        // SAFETY: alive for the test.
        let view = unsafe { HostApiRef::from_raw(&before) }.unwrap();
        assert!(view.spans().is_none(), "an older host takes no spans");

        // SAFETY: the functions ignore their context; a shorter size only hides entries.
        let old = unsafe {
            HostApi::new(std::ptr::null(), enabled, event, Some(register), None, None)
                .with_size(HOST_API_MIN_SIZE_V1)
        };
        // SAFETY: alive for the test.
        let view = unsafe { HostApiRef::from_raw(&old) }.unwrap();
        assert!(
            view.log_register().is_none(),
            "an older host has no log_register"
        );
        let _required = (view.log_enabled(), view.log_event(), view.ctx());

        // SAFETY: as above.
        let broken = unsafe {
            HostApi::new(std::ptr::null(), enabled, event, None, None, None).with_size(16)
        };
        // SAFETY: alive for the test.
        assert_eq!(unsafe { HostApiRef::from_raw(&broken) }.unwrap_err(), 16);
    }
}
