//! The module side of the ABI: the `extern "C"` functions a library exports for its module
//! type, and [`__grove_export!`](crate::__grove_export), the glue `#[grove::module]` expands
//! to.
//!
//! Every function runs the author's code under [`panic::catch`]: a panic becomes
//! [`Status::PANICKED`] and its message goes to the host's error sink; nothing unwinds
//! across `extern "C"`.

use std::ffi::c_void;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::abi::{
    self, ByteSink, FrameInfo, HostApi, ModuleHeader, RawBytes, RawInstance, Status, VTable,
};
use crate::state::{self, StateFormat};
use crate::{Context, Module, log, panic};

/// What the export glue needs of a module type.
pub trait Exportable: Module + Default + Serialize + DeserializeOwned {
    /// The function table for this type, a constant so that `&M::VTABLE` is `'static`.
    const VTABLE: VTable = vtable::<Self>();
}

impl<M: Module + Default + Serialize + DeserializeOwned> Exportable for M {}

/// The header of a module library.
pub const fn header(module_name: &'static str, type_name: &'static str) -> ModuleHeader {
    ModuleHeader {
        magic: abi::MAGIC,
        abi_version: abi::ABI_VERSION,
        header_size: size_of::<ModuleHeader>() as u32,
        sdk_version: RawBytes::from_static(env!("CARGO_PKG_VERSION")),
        rustc_version: RawBytes::from_static(env!("GROVE_RUSTC_VERSION")),
        module_name: RawBytes::from_static(module_name),
        type_name: RawBytes::from_static(type_name),
    }
}

/// The function table for `M`.
pub const fn vtable<M: Exportable>() -> VTable {
    VTable {
        size: size_of::<VTable>(),
        destroy: destroy::<M>,
        init: init::<M>,
        process: process::<M>,
        shutdown: shutdown::<M>,
        save_state: save_state::<M>,
        load_state: load_state::<M>,
    }
}

/// Runs `f` under the panic guard and reports its outcome as a status.
fn guarded(error: &ByteSink<'_>, f: impl FnOnce() -> Result<(), String>) -> Status {
    match panic::catch(f) {
        Ok(Ok(())) => Status::OK,
        Ok(Err(message)) => {
            error.write(message.as_bytes());
            Status::FAILED
        }
        Err(message) => {
            error.write(message.as_bytes());
            Status::PANICKED
        }
    }
}

/// Builds an `M`: the body of the exported `create_module`.
///
/// # Safety
/// `host` must point to a valid [`HostApi`] that stays at its address until the library is
/// closed; `out` must be valid for a write of a [`RawInstance`].
pub unsafe fn create<M: Exportable>(
    host: *const HostApi,
    out: *mut RawInstance,
    error: ByteSink<'_>,
    vtable: &'static VTable,
) -> Status {
    guarded(&error, || {
        // SAFETY: the caller guarantees `host` is valid.
        let host_api = unsafe { &*host };
        if host_api.size < size_of::<HostApi>() {
            return Err(format!(
                "the host's API table is older than this module's SDK ({} < {} bytes): \
                 rebuild the host with grove {} or newer",
                host_api.size,
                size_of::<HostApi>(),
                env!("CARGO_PKG_VERSION")
            ));
        }
        panic::install_hook();
        // SAFETY: the caller guarantees `host` outlives the library.
        unsafe { log::install(host) };
        // Tracing the schema runs the type's `Deserialize` (and `Drop`) on sample values;
        // whatever that does, it must not fail the load: an unknown schema only means the
        // slower, tolerant state path.
        let schema_fingerprint =
            panic::catch(state::fingerprint::<M>).unwrap_or(abi::SCHEMA_UNKNOWN);
        let this = Box::into_raw(Box::new(M::default())).cast::<c_void>();
        // SAFETY: the caller guarantees `out` is valid for writes.
        unsafe {
            out.write(RawInstance {
                this,
                vtable,
                schema_fingerprint,
            })
        };
        Ok(())
    })
}

/// # Safety
/// `this` must be an instance made by [`create::<M>`], not used again afterwards.
unsafe extern "C" fn destroy<M: Exportable>(this: *mut c_void, error: ByteSink<'_>) -> Status {
    guarded(&error, || {
        // SAFETY: `this` came from `Box::into_raw` of an `M` in `create` and is destroyed
        // exactly once (the caller's contract).
        drop(unsafe { Box::from_raw(this.cast::<M>()) });
        Ok(())
    })
}

/// Runs one of the frame callbacks on `this`.
///
/// # Safety
/// `this` must be a live instance made by [`create::<M>`], used by no other thread.
unsafe fn on_frame<M: Exportable>(
    this: *mut c_void,
    frame: &FrameInfo,
    error: ByteSink<'_>,
    call: fn(&mut M, &mut Context),
) -> Status {
    // SAFETY: the caller guarantees `this` is a live, exclusively borrowed `M`.
    let module = unsafe { &mut *this.cast::<M>() };
    let mut ctx = Context::from_frame(*frame);
    guarded(&error, || {
        call(module, &mut ctx);
        Ok(())
    })
}

unsafe extern "C" fn init<M: Exportable>(
    this: *mut c_void,
    frame: &FrameInfo,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: the host calls vtable functions only on live instances, one call at a time.
    unsafe { on_frame::<M>(this, frame, error, M::init) }
}

unsafe extern "C" fn process<M: Exportable>(
    this: *mut c_void,
    frame: &FrameInfo,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: as in `init`.
    unsafe { on_frame::<M>(this, frame, error, M::process) }
}

unsafe extern "C" fn shutdown<M: Exportable>(
    this: *mut c_void,
    frame: &FrameInfo,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: as in `init`.
    unsafe { on_frame::<M>(this, frame, error, M::shutdown) }
}

fn format_from_raw(raw: u32) -> Result<StateFormat, String> {
    StateFormat::from_raw(raw).ok_or_else(|| {
        format!("unknown state format {raw}: the host is newer than this module's SDK")
    })
}

unsafe extern "C" fn save_state<M: Exportable>(
    this: *mut c_void,
    format: u32,
    out: ByteSink<'_>,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: as in `init`.
    let module = unsafe { &*this.cast::<M>() };
    guarded(&error, || {
        let bytes = state::save(module, format_from_raw(format)?).map_err(|e| e.to_string())?;
        out.write(&bytes);
        Ok(())
    })
}

unsafe extern "C" fn load_state<M: Exportable>(
    this: *mut c_void,
    format: u32,
    bytes: RawBytes,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: as in `init`.
    let module = unsafe { &mut *this.cast::<M>() };
    // SAFETY: the host passes bytes valid for this call.
    let bytes = unsafe { bytes.as_slice() };
    guarded(&error, || {
        *module = state::load(bytes, format_from_raw(format)?).map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// The glue `#[grove::module]` expands to: the header static and the `create_module`
/// function, exported under names unique to the module type.
///
/// `create_module` is bounded on the type being [`Exportable`], under a `for<'__grove>`
/// binder: rustc checks such a bound only where the function is used, never on its own, so
/// a type that is not exportable is not reported a second time here. It is reported once,
/// for each missing piece, by the checks `#[grove::module]` emits next to this glue, which
/// fail the build whenever this bound does not hold.
///
/// Not for direct use; its input may change in any release.
#[doc(hidden)]
#[macro_export]
macro_rules! __grove_export {
    (
        type = $ty:ty,
        name = $name:literal,
        type_name = $type_name:literal,
        header_symbol = $header_symbol:literal,
        create_symbol = $create_symbol:literal $(,)?
    ) => {
        #[unsafe(export_name = $header_symbol)]
        #[used]
        pub static __GROVE_MODULE_HEADER: $crate::abi::ModuleHeader =
            $crate::__private::header($name, $type_name);

        /// # Safety
        /// As for [`grove::abi::CreateFn`].
        #[unsafe(export_name = $create_symbol)]
        pub unsafe extern "C" fn __grove_create_module(
            host: *const $crate::abi::HostApi,
            out: *mut $crate::abi::RawInstance,
            error: $crate::abi::ByteSink<'_>,
        ) -> $crate::abi::Status
        where
            for<'__grove> $ty: $crate::__private::Exportable,
        {
            // SAFETY: the loader calls this with the `CreateFn` contract, which is
            // `create`'s.
            unsafe {
                $crate::__private::create::<$ty>(
                    host,
                    out,
                    error,
                    &<$ty as $crate::__private::Exportable>::VTABLE,
                )
            }
        }
    };
}
