//! Safe code cannot make an ABI value that points anywhere it should not: a `ByteSink`
//! whose safe `write` would call through a null context, or a host table of its own.
#![forbid(unsafe_code)]

use std::ffi::c_void;

extern "C" fn write(_ctx: *mut c_void, _bytes: grove::abi::RawBytes) {}

fn main() {
    let sink = grove::abi::ByteSink {
        ctx: std::ptr::null_mut(),
        write,
        _buffer: std::marker::PhantomData,
    };
    sink.write(b"boom");
    let _bytes = grove::abi::RawBytes { ptr: 1 as *const u8, len: 8 };
}
