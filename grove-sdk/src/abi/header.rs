//! [`ModuleHeader`]: the static description of a module library, which the loader reads
//! from the file, before `dlopen` runs any of the library's code.

use std::mem::offset_of;

use super::{ABI_VERSION, MAGIC, RUSTC_VERSION, RawBytes, SDK_VERSION};

/// `ModuleHeader::panic_strategy`: the header predates the field (an older SDK).
pub const PANIC_UNKNOWN: u32 = 0;
/// `ModuleHeader::panic_strategy`: built with `panic = "unwind"`: panics are contained.
pub const PANIC_UNWIND: u32 = 1;
/// `ModuleHeader::panic_strategy`: built with `panic = "abort"`: the first panic ends the
/// process, host included.
pub const PANIC_ABORT: u32 = 2;

/// The size of a version 1 header, the first one: every header is at least this long.
pub const HEADER_MIN_SIZE_V1: usize = offset_of!(ModuleHeader, panic_strategy);

/// The static description of a module library. Append-only: `header_size` tells which
/// fields the library has.
///
/// Its strings point into the library's read-only data; in the file they are relocations,
/// which the loader resolves itself to read the header before opening the library.
#[repr(C)]
#[derive(Debug)]
pub struct ModuleHeader {
    /// Always [`MAGIC`].
    magic: [u8; 8],
    /// The [`ABI_VERSION`] the library was built with.
    abi_version: u32,
    /// `size_of::<ModuleHeader>()` as the library knows it.
    header_size: u32,
    /// Version of grove-sdk the library was built with.
    sdk_version: RawBytes,
    /// `rustc --version` of the compiler that built the library.
    rustc_version: RawBytes,
    /// The module's name (`#[grove::module(name = "...")]`, or the type's name in snake case).
    module_name: RawBytes,
    /// The Rust type the module was declared on.
    type_name: RawBytes,
    // ---- appended after version 1's first release ----
    /// [`PANIC_UNWIND`] or [`PANIC_ABORT`]: how the library's panics end.
    panic_strategy: u32,
    /// The version of the module's state (`#[grove::module(version = N)]`, 1 by default).
    /// 0 in a library built before versions existed, where this field was reserved.
    state_version: u32,
}

// SAFETY: a header only ever points at `'static` string literals (its only constructor
// takes them), which are immutable and valid from any thread.
unsafe impl Sync for ModuleHeader {}

impl ModuleHeader {
    /// Offset of the magic.
    pub const MAGIC_AT: usize = offset_of!(ModuleHeader, magic);
    /// Offset of the ABI version (`u32`).
    pub const ABI_VERSION_AT: usize = offset_of!(ModuleHeader, abi_version);
    /// Offset of the header's size (`u32`).
    pub const HEADER_SIZE_AT: usize = offset_of!(ModuleHeader, header_size);
    /// Offset of the SDK version ([`RawBytes`]).
    pub const SDK_VERSION_AT: usize = offset_of!(ModuleHeader, sdk_version);
    /// Offset of the rustc version ([`RawBytes`]).
    pub const RUSTC_VERSION_AT: usize = offset_of!(ModuleHeader, rustc_version);
    /// Offset of the module's name ([`RawBytes`]).
    pub const MODULE_NAME_AT: usize = offset_of!(ModuleHeader, module_name);
    /// Offset of the type's name ([`RawBytes`]).
    pub const TYPE_NAME_AT: usize = offset_of!(ModuleHeader, type_name);
    /// Offset of the panic strategy (`u32`), present when the header is long enough.
    pub const PANIC_STRATEGY_AT: usize = offset_of!(ModuleHeader, panic_strategy);
    /// Offset of the state's version (`u32`), present when the header is long enough; 0
    /// in a library built before versions existed.
    pub const STATE_VERSION_AT: usize = offset_of!(ModuleHeader, state_version);
    /// Within a [`RawBytes`]: offset of the pointer.
    pub const BYTES_PTR_AT: usize = 0;
    /// Within a [`RawBytes`]: offset of the length (`usize`).
    pub const BYTES_LEN_AT: usize = size_of::<*const u8>();

    /// The header of a module named `module_name`, declared on `type_name`, in a library
    /// whose panics unwind (`panic_unwind`, the `cfg!(panic = "unwind")` of the module's
    /// crate) or abort, whose state is at version `state_version`.
    pub const fn new(
        module_name: &'static str,
        type_name: &'static str,
        panic_unwind: bool,
        state_version: u32,
    ) -> Self {
        Self {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            header_size: size_of::<ModuleHeader>() as u32,
            sdk_version: RawBytes::from_static(SDK_VERSION),
            rustc_version: RawBytes::from_static(RUSTC_VERSION),
            module_name: RawBytes::from_static(module_name),
            type_name: RawBytes::from_static(type_name),
            panic_strategy: if panic_unwind {
                PANIC_UNWIND
            } else {
                PANIC_ABORT
            },
            state_version,
        }
    }

    /// The module's name, as this header was built with it.
    pub fn module_name(&self) -> &'static str {
        // SAFETY: `new` is the only constructor and takes `'static` strings.
        unsafe { self.module_name.as_str() }.unwrap_or("")
    }
}
