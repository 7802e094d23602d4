//! The C ABI between a host and a module library: the only things that cross the boundary.
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
//!   loader before any module code runs;
//! - `grove_create_module__<suffix>`: a [`CreateFn`] that builds an instance.
//!
//! The tables ([`VTable`], [`HostApi`]) are append-only: each starts with its own size, so
//! a reader knows which entries the other side has.

use std::ffi::c_void;
use std::marker::PhantomData;

/// The first eight bytes of every [`ModuleHeader`].
pub const MAGIC: [u8; 8] = *b"GROVEMOD";

/// The ABI version this SDK speaks. Bumped when a table changes in a way that is not an
/// append.
pub const ABI_VERSION: u32 = 1;

/// The oldest module ABI version a host built with this SDK still loads.
pub const MIN_ABI_VERSION: u32 = 1;

/// Name prefix of the exported [`ModuleHeader`] symbol.
pub const HEADER_SYMBOL_PREFIX: &str = "grove_module_header__";

/// Name prefix of the exported [`CreateFn`] symbol. The suffix is the header's.
pub const CREATE_SYMBOL_PREFIX: &str = "grove_create_module__";

/// A borrowed byte slice (UTF-8 text where a string is meant), valid for one call unless the
/// field documents otherwise.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawBytes {
    /// Start of the bytes; dangling (never null) when `len` is 0.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl RawBytes {
    /// Borrows a static string, for the module header.
    pub const fn from_static(s: &'static str) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Borrows `bytes` for the duration of a call.
    pub fn new(bytes: &[u8]) -> Self {
        Self {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// The bytes.
    ///
    /// # Safety
    /// `ptr` must point to `len` initialised bytes that stay valid and unmodified for `'a`.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the caller guarantees `ptr..ptr+len` is valid for reads for 'a.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The bytes as UTF-8 text, or `None` when they are not UTF-8.
    ///
    /// # Safety
    /// As for [`RawBytes::as_slice`].
    pub unsafe fn as_str<'a>(&self) -> Option<&'a str> {
        // SAFETY: forwarded to the caller.
        std::str::from_utf8(unsafe { self.as_slice() }).ok()
    }
}

/// The outcome of a call into a module.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u32);

impl Status {
    /// The call succeeded.
    pub const OK: Status = Status(0);
    /// The module's code panicked; the message was written to the error sink.
    pub const PANICKED: Status = Status(1);
    /// The call failed without a panic (state that would not decode, an unknown format...);
    /// the message was written to the error sink.
    pub const FAILED: Status = Status(2);
}

/// A host-provided writer: the module hands it bytes, the host copies them.
#[repr(C)]
#[derive(Debug)]
pub struct ByteSink<'a> {
    /// Opaque host context passed back to `write`.
    pub ctx: *mut c_void,
    /// Appends `bytes` (valid for this call only) to the host's buffer.
    pub write: unsafe extern "C" fn(ctx: *mut c_void, bytes: RawBytes),
    /// Ties the sink to the buffer it writes into.
    pub _buffer: PhantomData<&'a mut Vec<u8>>,
}

impl<'a> ByteSink<'a> {
    /// A sink that appends to `buffer`.
    pub fn for_vec(buffer: &'a mut Vec<u8>) -> Self {
        unsafe extern "C" fn append(ctx: *mut c_void, bytes: RawBytes) {
            // SAFETY: `ctx` is the `&'a mut Vec<u8>` this sink was made from, alive for 'a,
            // and the module passes bytes valid for this call.
            unsafe { (*ctx.cast::<Vec<u8>>()).extend_from_slice(bytes.as_slice()) }
        }
        Self {
            ctx: (buffer as *mut Vec<u8>).cast(),
            write: append,
            _buffer: PhantomData,
        }
    }

    /// Writes `bytes` to the host.
    pub fn write(&self, bytes: &[u8]) {
        // SAFETY: the host built this sink with a `write` valid for `ctx` for 'a, and the
        // bytes are valid for the duration of the call.
        unsafe { (self.write)(self.ctx, RawBytes::new(bytes)) }
    }
}

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

/// `StateFormat` value: positional, for two versions with the same schema fingerprint.
pub const STATE_FORMAT_POSITIONAL: u32 = 0;
/// `StateFormat` value: self-describing, keyed by field names.
pub const STATE_FORMAT_SELF_DESCRIBING: u32 = 1;

/// Fingerprint value meaning "the schema could not be traced": never equal to another.
pub const SCHEMA_UNKNOWN: u64 = 0;

/// The static description of a module library, read before any module code runs.
#[repr(C)]
#[derive(Debug)]
pub struct ModuleHeader {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// The [`ABI_VERSION`] the library was built with.
    pub abi_version: u32,
    /// `size_of::<ModuleHeader>()` as the library knows it.
    pub header_size: u32,
    /// Version of grove-sdk the library was built with.
    pub sdk_version: RawBytes,
    /// `rustc --version` of the compiler that built the library.
    pub rustc_version: RawBytes,
    /// The module's name (`#[grove::module(name = "...")]`, or the type's name in snake case).
    pub module_name: RawBytes,
    /// The Rust type the module was declared on.
    pub type_name: RawBytes,
}

// SAFETY: a header only ever points at `'static` string literals, which are immutable and
// valid from any thread.
unsafe impl Sync for ModuleHeader {}

/// Builds an instance. Exported as `grove_create_module__<suffix>`.
///
/// On `Status::OK`, `*out` holds the instance. `host` must stay valid, at the same address,
/// until the library is closed: the module keeps it for logging.
pub type CreateFn = unsafe extern "C" fn(
    host: *const HostApi,
    out: *mut RawInstance,
    error: ByteSink<'_>,
) -> Status;

/// A live module instance: an opaque pointer and the functions that act on it.
#[repr(C)]
#[derive(Debug)]
pub struct RawInstance {
    /// The module's value, owned by the module library.
    pub this: *mut c_void,
    /// The library's function table, `'static` within the library.
    pub vtable: *const VTable,
    /// Hash of the full serde shape of the module's state, or [`SCHEMA_UNKNOWN`].
    pub schema_fingerprint: u64,
}

/// Signature of `init`, `process` and `shutdown`.
pub type FrameFn =
    unsafe extern "C" fn(this: *mut c_void, frame: &FrameInfo, error: ByteSink<'_>) -> Status;

/// The functions of a module instance. Append-only: `size` tells which entries exist.
#[repr(C)]
#[derive(Debug)]
pub struct VTable {
    /// `size_of::<VTable>()` as the library knows it.
    pub size: usize,
    /// Drops the instance. `this` is invalid afterwards, whatever the status.
    pub destroy: unsafe extern "C" fn(this: *mut c_void, error: ByteSink<'_>) -> Status,
    /// `Module::init`, after create and after every reload.
    pub init: FrameFn,
    /// `Module::process`, once per frame.
    pub process: FrameFn,
    /// `Module::shutdown`, once when the module leaves for good.
    pub shutdown: FrameFn,
    /// Serialises the state in `format` into `out`.
    pub save_state: unsafe extern "C" fn(
        this: *mut c_void,
        format: u32,
        out: ByteSink<'_>,
        error: ByteSink<'_>,
    ) -> Status,
    /// Replaces the state with `state`, decoded in `format`. On failure the instance keeps
    /// the state it had.
    pub load_state: unsafe extern "C" fn(
        this: *mut c_void,
        format: u32,
        state: RawBytes,
        error: ByteSink<'_>,
    ) -> Status,
}

/// `LogMetadata::level` values, as in `tracing::Level`.
pub mod level {
    /// `tracing::Level::ERROR`.
    pub const ERROR: u32 = 1;
    /// `tracing::Level::WARN`.
    pub const WARN: u32 = 2;
    /// `tracing::Level::INFO`.
    pub const INFO: u32 = 3;
    /// `tracing::Level::DEBUG`.
    pub const DEBUG: u32 = 4;
    /// `tracing::Level::TRACE`.
    pub const TRACE: u32 = 5;
}

/// Where a module's log event comes from: the module's `tracing` callsite.
#[repr(C)]
#[derive(Debug)]
pub struct LogMetadata {
    /// Address of the callsite's metadata in the module: stable for the library's lifetime,
    /// so the host can cache per callsite.
    pub id: usize,
    /// One of [`level`].
    pub level: u32,
    /// The event's target (by default the module path).
    pub target: RawBytes,
    /// The callsite's name.
    pub name: RawBytes,
    /// Rust module path, empty when unknown.
    pub module_path: RawBytes,
    /// Source file, empty when unknown.
    pub file: RawBytes,
    /// Source line, 0 when unknown.
    pub line: u32,
    /// Names of the callsite's fields, `field_count` of them.
    pub field_names: *const RawBytes,
    /// Number of field names.
    pub field_count: usize,
}

/// `LogValue::kind` values.
pub mod value_kind {
    /// `bits` is an `i64`.
    pub const I64: u32 = 0;
    /// `bits` is a `u64`.
    pub const U64: u32 = 1;
    /// `bits` is an `f64`'s bits.
    pub const F64: u32 = 2;
    /// `bits` is 0 or 1.
    pub const BOOL: u32 = 3;
    /// `text` is a string value.
    pub const STR: u32 = 4;
    /// `text` is the value's `Debug` rendering.
    pub const DEBUG: u32 = 5;
}

/// One recorded field value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LogValue {
    /// One of [`value_kind`].
    pub kind: u32,
    /// Numeric payload.
    pub bits: u64,
    /// Text payload.
    pub text: RawBytes,
}

/// A field of a log event: its name (one of the callsite's) and its value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LogField {
    /// The field's name.
    pub name: RawBytes,
    /// The field's value.
    pub value: LogValue,
}

/// What the host gives a module: logging now, messaging and config later. Append-only.
#[repr(C)]
#[derive(Debug)]
pub struct HostApi {
    /// `size_of::<HostApi>()` as the host knows it.
    pub size: usize,
    /// The host's [`ABI_VERSION`].
    pub abi_version: u32,
    /// The most verbose level the host may record, as in [`level`]; 0 records nothing.
    pub max_log_level: u32,
    /// Opaque host context passed back to every function.
    pub ctx: *const c_void,
    /// Whether the host records events from this callsite.
    pub log_enabled: unsafe extern "C" fn(ctx: *const c_void, meta: &LogMetadata) -> bool,
    /// Records an event. `fields` points to `len` fields valid for the call.
    pub log_event: unsafe extern "C" fn(
        ctx: *const c_void,
        meta: &LogMetadata,
        fields: *const LogField,
        len: usize,
    ),
}

// SAFETY: the host guarantees `ctx` and the functions may be used from any thread for as
// long as the library is loaded (documented on `CreateFn`).
unsafe impl Sync for HostApi {}
// SAFETY: as above.
unsafe impl Send for HostApi {}
