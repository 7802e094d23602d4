//! Borrowed bytes, host writers and call outcomes: the small types every table uses.

use std::ffi::c_void;
use std::marker::PhantomData;

/// A borrowed byte slice (UTF-8 text where a string is meant), valid for one call unless the
/// table documents otherwise.
///
/// Making one is safe (it only records a pointer); reading one is `unsafe`, since nothing
/// here can know the pointer is still valid.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RawBytes {
    /// Start of the bytes; dangling (never null) when `len` is 0.
    ptr: *const u8,
    /// Number of bytes.
    len: usize,
}

impl RawBytes {
    /// No bytes.
    pub const EMPTY: RawBytes = RawBytes::from_static("");

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

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    ///
    /// # Safety
    /// `ptr` must point to `len` initialised bytes that stay valid and unmodified for `'a`.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
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
pub struct Status(u32);

impl Status {
    /// The call succeeded.
    pub const OK: Status = Status(0);
    /// The module's code panicked; the message was written to the error sink.
    pub const PANICKED: Status = Status(1);
    /// The call failed without a panic (state that would not decode, an unknown format...);
    /// the message was written to the error sink.
    pub const FAILED: Status = Status(2);

    /// The raw code, for a status this SDK does not know.
    pub fn code(self) -> u32 {
        self.0
    }
}

/// A host-provided writer: the module hands it bytes, the host copies them.
///
/// Only [`ByteSink::for_vec`] (safe) and [`ByteSink::from_raw`] (`unsafe`, for a host with
/// a buffer of its own) make one, so [`ByteSink::write`] is safe to call.
#[repr(C)]
#[derive(Debug)]
pub struct ByteSink<'a> {
    /// Opaque host context passed back to `write`.
    ctx: *mut c_void,
    /// Appends `bytes` (valid for this call only) to the host's buffer.
    write: unsafe extern "C" fn(ctx: *mut c_void, bytes: RawBytes),
    /// Ties the sink to the buffer it writes into.
    _buffer: PhantomData<&'a mut Vec<u8>>,
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

    /// A sink calling `write(ctx, bytes)`.
    ///
    /// # Safety
    /// `write` must be safe to call with `ctx` and any bytes valid for the call, from any
    /// thread, for as long as `'a`.
    pub unsafe fn from_raw(
        ctx: *mut c_void,
        write: unsafe extern "C" fn(ctx: *mut c_void, bytes: RawBytes),
    ) -> Self {
        Self {
            ctx,
            write,
            _buffer: PhantomData,
        }
    }

    /// Writes `bytes` to the host.
    pub fn write(&self, bytes: &[u8]) {
        // SAFETY: both constructors guarantee `write` is valid for `ctx` for 'a, and the
        // bytes are valid for the duration of the call.
        unsafe { (self.write)(self.ctx, RawBytes::new(bytes)) }
    }
}
