//! What a module's `tracing` events look like on their way to the host.

use super::RawBytes;

/// `LogMetadata::level` values, as in `tracing::Level`; 0 in a level filter means "off".
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

/// What the host answers to `HostApi::log_register`, as in `tracing_core::Interest`.
pub mod interest {
    /// The host never records events from this callsite: the module may skip it for good
    /// (until told that the host's filter changed).
    pub const NEVER: u32 = 0;
    /// Ask `log_enabled` every time.
    pub const SOMETIMES: u32 = 1;
    /// The host always records events from this callsite.
    pub const ALWAYS: u32 = 2;
}

/// Where a module's span or event sits, when it is not given as a span the host returned
/// (`HostApi::span_new`, `HostApi::log_event_in`).
pub mod span_parent {
    /// In the span the calling thread is in, if any (what `tracing` does by default).
    pub const CURRENT: u64 = 0;
    /// In no span (`parent: None`).
    pub const ROOT: u64 = u64::MAX;
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

/// Where a module's log event comes from: the module's `tracing` callsite. Valid for one
/// call.
#[repr(C)]
#[derive(Debug)]
pub struct LogMetadata {
    id: usize,
    level: u32,
    target: RawBytes,
    name: RawBytes,
    module_path: RawBytes,
    file: RawBytes,
    line: u32,
    field_names: *const RawBytes,
    field_count: usize,
}

impl LogMetadata {
    /// Describes a callsite.
    ///
    /// # Safety
    /// Every [`RawBytes`] and the `field_count` names at `field_names` must be valid for as
    /// long as the value is used (one call into the host).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn new(
        id: usize,
        level: u32,
        target: RawBytes,
        name: RawBytes,
        module_path: RawBytes,
        file: RawBytes,
        line: u32,
        field_names: &[RawBytes],
    ) -> Self {
        Self {
            id,
            level,
            target,
            name,
            module_path,
            file,
            line,
            field_names: field_names.as_ptr(),
            field_count: field_names.len(),
        }
    }

    /// Address of the callsite's metadata in the module: stable while the library is
    /// loaded, so the host can cache per callsite.
    pub fn id(&self) -> usize {
        self.id
    }

    /// One of [`level`].
    pub fn level(&self) -> u32 {
        self.level
    }

    /// The event's target (by default the module path).
    pub fn target(&self) -> RawBytes {
        self.target
    }

    /// The callsite's name.
    pub fn name(&self) -> RawBytes {
        self.name
    }

    /// Rust module path, empty when unknown.
    pub fn module_path(&self) -> RawBytes {
        self.module_path
    }

    /// Source file, empty when unknown.
    pub fn file(&self) -> RawBytes {
        self.file
    }

    /// Source line, 0 when unknown.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// Names of the callsite's fields.
    ///
    /// # Safety
    /// `self` must be the value the module passed to the current call.
    pub unsafe fn field_names<'a>(&self) -> &'a [RawBytes] {
        if self.field_count == 0 || self.field_names.is_null() {
            return &[];
        }
        // SAFETY: the module passes `field_count` names valid for this call (`new`'s
        // contract), and the caller is inside that call.
        unsafe { std::slice::from_raw_parts(self.field_names, self.field_count) }
    }
}

/// One recorded field value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LogValue {
    /// One of [`value_kind`].
    pub kind: u32,
    /// Numeric payload.
    pub bits: u64,
    /// Text payload, for [`value_kind::STR`] and [`value_kind::DEBUG`].
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
