//! The C ABI between a host and a module library: the only things that cross the boundary,
//! and the module side's `unsafe` glue. Every `unsafe` of grove-sdk lives in this folder.
//!
//! Host and module each carry their own copy of std, of the allocator's bookkeeping and of
//! every global, so no Rust type (`String`, `Vec`, `Box`, `dyn Trait`) crosses. Everything
//! here is `#[repr(C)]`: plain integers, borrowed byte slices valid for the duration of one
//! call, and function pointers. Outputs travel through host-provided [`ByteSink`]s: the
//! module serialises into its own buffer and the host copies, so memory is always freed by
//! the side that allocated it.
//!
//! A module library exports two symbols, each with a per-type suffix so that several module
//! crates can be linked statically into one binary without clashing:
//! - `grove_module_header__<suffix>`: a static [`ModuleHeader`], read and checked by the
//!   loader from the file, before any code of the library runs;
//! - `grove_create_module__<suffix>`: a [`CreateFn`] that builds an instance.
//!
//! # Append-only tables
//! [`ModuleHeader`], [`VTable`] and [`HostApi`] each start with their own size. New entries
//! are only ever appended; each ABI version has a minimum size ([`HEADER_MIN_SIZE_V1`],
//! [`VTABLE_MIN_SIZE_V1`], [`HOST_API_MIN_SIZE_V1`]) holding the entries every library or
//! host of that version has. A reader accepts any table at least that long and reads the
//! entries past the minimum through size-checked accessors ([`VTableRef`], [`HostApiRef`]),
//! which say `None` for an entry the other side was built without: a module built before an
//! entry was added loads under a newer host, and the reverse, with that feature off.
//!
//! # Safe code cannot build a raw table
//! The types that hold pointers (tables, sinks, byte slices) have private fields and
//! `unsafe` constructors, as libloading and pyo3-ffi do: a `#![forbid(unsafe_code)]` crate
//! cannot make one that points anywhere it should not.

mod bus;
mod bytes;
mod config;
pub(crate) mod export;
pub(crate) mod forward;
mod header;
pub(crate) mod host;
mod log;
pub(crate) mod panic;
mod tables;

pub use bus::{
    BACKPRESSURE_DROP_OLDEST, BACKPRESSURE_KEEP_LATEST, BACKPRESSURE_REJECT, MESSAGE_POSITIONAL,
    MESSAGE_SELF_DESCRIBING, REPORT_DECODE_FAILED, REPORT_ENCODE_FAILED, RawInbox, RawMessage,
};
pub use bytes::{ByteSink, RawBytes, StateBuffer, Status};
pub use config::{
    CONFIG_LENIENT, CONFIG_PARTIAL, CONFIG_STRICT, ConfigApplied, ConfigIssue, FieldPath, PathKey,
    decode_health, encode_health,
};
pub use header::{HEADER_MIN_SIZE_V1, ModuleHeader, PANIC_ABORT, PANIC_UNKNOWN, PANIC_UNWIND};
pub use log::{LogField, LogMetadata, LogValue, interest, level, span_parent, value_kind};
pub use tables::{
    BusFns, BusInboxFn, BusPublishFn, BusReportFn, BusSubscribeFn, BusUnsubscribeFn, ConfigureFn,
    CreateFn, DestroyFn, DetachFn, FrameFn, FrameInfo, HOST_API_MIN_SIZE_V1,
    HOST_API_SIZE_BEFORE_SPANS, HealthFn, HostApi, HostApiRef, LoadStateFn, LogEnabledFn,
    LogEventFn, LogEventInFn, LogMaxLevelFn, LogRegisterFn, NotifyFn, RawInstance, RestoreStateFn,
    SaveStateFn, SaveStateIntoFn, SpanCloseFn, SpanFn, SpanFns, SpanFollowsFromFn, SpanNewFn,
    SpanRecordFn, VTABLE_MIN_SIZE_V1, VTABLE_SIZE_BEFORE_CONFIGURE,
    VTABLE_SIZE_BEFORE_RESTORE_STATE, VTABLE_SIZE_BEFORE_SAVE_STATE_INTO, VTable, VTableRef,
};

/// The first eight bytes of every [`ModuleHeader`].
pub const MAGIC: [u8; 8] = *b"GROVEMOD";

/// The ABI version this SDK speaks. Bumped only when a table changes in a way that is not
/// an append; appended entries are found through the tables' sizes instead.
pub const ABI_VERSION: u32 = 1;

/// The oldest module ABI version a host built with this SDK still loads.
pub const MIN_ABI_VERSION: u32 = 1;

/// Name prefix of the exported [`ModuleHeader`] symbol.
pub const HEADER_SYMBOL_PREFIX: &str = "grove_module_header__";

/// Name prefix of the exported [`CreateFn`] symbol. The suffix is the header's.
pub const CREATE_SYMBOL_PREFIX: &str = "grove_create_module__";

/// `StateFormat` value: positional, for two versions with the same schema fingerprint.
pub const STATE_FORMAT_POSITIONAL: u32 = 0;
/// `StateFormat` value: self-describing, keyed by field names, with explicit `Some`s
/// (1 was plain MessagePack, which reads `Some(None)` back as `None`; a module that only
/// knows 1 refuses 2, and the reload with it, rather than misreading).
pub const STATE_FORMAT_SELF_DESCRIBING: u32 = 2;

/// Fingerprint value meaning "the schema could not be traced": never equal to another.
pub const SCHEMA_UNKNOWN: u64 = 0;

/// The version of grove-sdk this crate is.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `rustc --version` of the compiler that built this crate.
pub const RUSTC_VERSION: &str = env!("GROVE_RUSTC_VERSION");
