//! The positional codec's passes over common parts of a state (sequences of numbers,
//! strings, small arrays), compiled here, in grove-sdk, so that a module built in debug
//! runs them optimised.
//!
//! A module's state code is generic: rustc compiles it in the module crate, at the module's
//! opt-level (0 while it is developed), whatever grove-sdk's own profile says. But a crate
//! built without optimisation (`opt-level` 0 or 1) reuses the generic instances its
//! dependencies already compiled, when they were built at `opt-level` 0 or 1 too (rustc's
//! shared generics): with `[profile.dev.package.grove-sdk] opt-level = 1`, a debug module
//! whose state holds a `Vec<u64>` runs these instances, compiled at opt-level 1, for every
//! element, rather than its own unoptimised copy (a debug module's 16 MiB state reloads
//! about 3x faster: BENCHMARKS.md, "Big states"). At `opt-level` 2 or 3 grove-sdk keeps its
//! instances to itself, and in a release module everything is optimised anyway: there,
//! this would only be code that nothing calls, so it is compiled with debug assertions
//! only (the dev profile has them, the release profile does not). A state part not listed
//! here (a `Vec` of the author's own structs) is still compiled in the module,
//! unoptimised in debug.

use crate::positional::{Result, encoded_len, from_slice, write_into};

/// The three passes over a `T`: counting, writing into the host's buffer, and reading
/// back with the check (which encodes again, against the bytes read).
type Passes<T> = (
    fn(&T) -> Result<usize>,
    fn(&T, &mut [u8]) -> Result<()>,
    fn(&'static [u8]) -> Result<T>,
);

macro_rules! prebuilt {
    ($($name:ident: $ty:ty),* $(,)?) => {$(
        #[used]
        static $name: Passes<$ty> = (encoded_len::<$ty>, write_into::<$ty>, from_slice::<$ty>);
    )*};
}

prebuilt!(
    VEC_U8: Vec<u8>,
    VEC_U16: Vec<u16>,
    VEC_U32: Vec<u32>,
    VEC_U64: Vec<u64>,
    VEC_I8: Vec<i8>,
    VEC_I16: Vec<i16>,
    VEC_I32: Vec<i32>,
    VEC_I64: Vec<i64>,
    VEC_F32: Vec<f32>,
    VEC_F64: Vec<f64>,
    VEC_BOOL: Vec<bool>,
    VEC_STRING: Vec<String>,
    VEC_F32_2: Vec<[f32; 2]>,
    VEC_F32_3: Vec<[f32; 3]>,
    VEC_F32_4: Vec<[f32; 4]>,
    VEC_F32_PAIR: Vec<(f32, f32)>,
    VEC_F32_TRIPLE: Vec<(f32, f32, f32)>,
    VEC_F64_2: Vec<[f64; 2]>,
    VEC_F64_3: Vec<[f64; 3]>,
    STRING: String,
);
