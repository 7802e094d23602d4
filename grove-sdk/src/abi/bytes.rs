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

/// A host-provided buffer that a module writes a state into, in place: the module asks once
/// for exactly as many bytes as its state takes, and writes them there. One buffer, the
/// host's, and no copy: a big state costs its size once on the way out of the module.
///
/// Only [`StateBuffer::for_vec`] (safe) and [`StateBuffer::from_raw`] (`unsafe`) make one,
/// so [`StateBuffer::reserve`] is safe to call.
#[repr(C)]
#[derive(Debug)]
pub struct StateBuffer<'a> {
    /// Opaque host context passed back to `reserve`.
    ctx: *mut c_void,
    /// Makes the host's buffer `len` initialised bytes and returns where they start, or
    /// null when the host cannot allocate them.
    reserve: unsafe extern "C" fn(ctx: *mut c_void, len: usize) -> *mut u8,
    /// Ties the buffer to the host's.
    _buffer: PhantomData<&'a mut Vec<u8>>,
}

impl<'a> StateBuffer<'a> {
    /// A buffer that replaces the contents of `buffer` with the bytes reserved. They are
    /// allocated zeroed (for a big state, fresh pages that cost nothing until the module
    /// writes them), and an allocation that fails is reported, not an abort.
    pub fn for_vec(buffer: &'a mut Vec<u8>) -> Self {
        unsafe extern "C" fn reserve(ctx: *mut c_void, len: usize) -> *mut u8 {
            // SAFETY: `ctx` is the `&'a mut Vec<u8>` this buffer was made from, alive for
            // 'a, and no reference to its bytes outlives the `&mut StateBuffer` borrow of
            // the previous `reserve`.
            let buffer = unsafe { &mut *ctx.cast::<Vec<u8>>() };
            match zeroed(len) {
                Some(bytes) => {
                    *buffer = bytes;
                    buffer.as_mut_ptr()
                }
                None => std::ptr::null_mut(),
            }
        }
        Self {
            ctx: (buffer as *mut Vec<u8>).cast(),
            reserve,
            _buffer: PhantomData,
        }
    }

    /// A buffer whose bytes `reserve(ctx, len)` hands out.
    ///
    /// # Safety
    /// For as long as `'a`, `reserve` must be safe to call with `ctx` and any length, and
    /// return either null or a pointer to `len` initialised bytes that nothing else reads
    /// or writes until the next call to `reserve` or the end of `'a`.
    pub unsafe fn from_raw(
        ctx: *mut c_void,
        reserve: unsafe extern "C" fn(ctx: *mut c_void, len: usize) -> *mut u8,
    ) -> Self {
        Self {
            ctx,
            reserve,
            _buffer: PhantomData,
        }
    }

    /// `len` bytes of the host's buffer to write the state into, replacing any reserved
    /// before; `None` when the host cannot allocate them.
    pub fn reserve(&mut self, len: usize) -> Option<&mut [u8]> {
        // SAFETY: both constructors guarantee `reserve` is valid for `ctx` for 'a.
        let ptr = unsafe { (self.reserve)(self.ctx, len) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: the constructors guarantee a non-null pointer is to `len` initialised
        // bytes used by nothing else until the next `reserve`, which the `&mut self`
        // borrow of the slice returned rules out.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
    }
}

/// `len` zeroed bytes, or `None` when they cannot be allocated.
fn zeroed(len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u8>(len).ok()?;
    // SAFETY: the layout's size is not zero.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `len` bytes
    // (`u8`'s alignment), all of them initialised (zeroed), and is owned by nothing else.
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_buffer_holds_exactly_what_was_reserved_last() {
        let mut host = vec![1, 2, 3];
        {
            let mut buffer = StateBuffer::for_vec(&mut host);
            buffer.reserve(5).unwrap().copy_from_slice(b"first");
            let slot = buffer.reserve(4).unwrap();
            assert_eq!(slot, [0; 4], "zeroed, not the bytes of before");
            slot.copy_from_slice(b"last");
            assert_eq!(buffer.reserve(0).unwrap(), [0u8; 0]);
            let slot = buffer.reserve(3).unwrap();
            slot.copy_from_slice(b"end");
        }
        assert_eq!(host, b"end");
        assert_eq!(host.capacity(), 3, "exactly the state, no slack");
    }

    #[test]
    fn a_buffer_too_large_to_allocate_is_none_not_an_abort() {
        let mut host = vec![9];
        {
            let mut buffer = StateBuffer::for_vec(&mut host);
            assert!(buffer.reserve(usize::MAX).is_none());
            assert!(buffer.reserve(isize::MAX as usize).is_none());
        }
        assert_eq!(host, [9], "the host's buffer is left as it was");
    }
}
