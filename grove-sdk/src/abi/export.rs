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

use super::{
    ByteSink, CONFIG_LENIENT, CONFIG_PARTIAL, CONFIG_STRICT, ConfigIssue, ConfigureFn, FrameInfo,
    HostApi, ModuleHeader, RawBytes, RawInstance, SCHEMA_UNKNOWN, StateBuffer, Status, VTable,
    encode_health, forward, host, panic,
};
use crate::config::Configure;
use crate::state::{self, StateFormat};
use crate::{Context, Module};

/// What the export glue needs of a module type.
pub trait Exportable:
    Module + Default + Serialize + DeserializeOwned + ModuleConfig + ModuleVersion
{
    /// The function table for this type, a constant so that `&M::VTABLE` is `'static`.
    const VTABLE: VTable = vtable::<Self>();
}

impl<M: Module + Default + Serialize + DeserializeOwned + ModuleConfig + ModuleVersion> Exportable
    for M
{
}

/// The version of a module type's state: `#[grove::module(version = N)]`, 1 when not
/// given. Written in the library's header, and handed to [`Module::migrate`] as the old
/// state's version when a state saved by another version is restored.
pub trait ModuleVersion {
    /// The version, at least 1.
    const VERSION: u32;
}

/// The `configure` entry of a module type's vtable: `#[grove::module]` implements it for
/// every module, with [`configure::<M, C>`](configure) when the attribute names a config
/// type `C`, else `None`. A trait of its own, without supertraits, so that a module
/// missing its `Module` impl is not reported here a second time.
pub trait ModuleConfig {
    /// The entry.
    const CONFIGURE: Option<ConfigureFn>;
}

/// The header of a module library; `panic_unwind` is the module crate's
/// `cfg!(panic = "unwind")`, `state_version` its type's [`ModuleVersion::VERSION`].
pub const fn header(
    module_name: &'static str,
    type_name: &'static str,
    panic_unwind: bool,
    state_version: u32,
) -> ModuleHeader {
    ModuleHeader::new(module_name, type_name, panic_unwind, state_version)
}

/// The function table for `M`.
pub const fn vtable<M: Exportable>() -> VTable {
    // SAFETY: each function is the one its entry documents, for instances of `M` made by
    // `create::<M>`; `detach` and `interest_changed` act on this library's globals.
    unsafe {
        VTable::new(
            destroy::<M>,
            init::<M>,
            process::<M>,
            shutdown::<M>,
            save_state::<M>,
            load_state::<M>,
            Some(host::detach),
            Some(forward::interest_changed),
            M::CONFIGURE,
            Some(health::<M>),
            Some(restore_state::<M>),
            Some(save_state_into::<M>),
        )
    }
}

/// Runs `f` as the ABI call `call` under the panic guard and reports its outcome.
fn guarded(
    call: &'static str,
    error: &ByteSink<'_>,
    f: impl FnOnce() -> Result<(), String>,
) -> Status {
    match panic::catch(call, f) {
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
/// detached (see [`CreateFn`](super::CreateFn)); `out` must be valid for a write of a
/// [`RawInstance`].
pub unsafe fn create<M: Exportable>(
    host: *const HostApi,
    out: *mut RawInstance,
    error: ByteSink<'_>,
    vtable: &'static VTable,
    header: &'static ModuleHeader,
) -> Status {
    // The vtable first, before any code that can fail: with it the host can detach this
    // library even if the rest of `create` does not get far.
    // SAFETY: the caller guarantees `out` is valid for writes; a null value with this
    // library's vtable is what `RawInstance::new` allows before the value exists.
    unsafe {
        out.write(RawInstance::new(
            std::ptr::null_mut(),
            vtable,
            SCHEMA_UNKNOWN,
        ))
    };
    panic::install_hook(header.module_name());
    guarded("create", &error, || {
        // SAFETY: the caller guarantees `host` stays valid until the library is detached.
        unsafe { host::attach(host) }?;
        forward::install();
        // Tracing the schema runs the type's `Deserialize` (and `Drop`) on sample values;
        // whatever that does, it must not fail the load: an unknown schema only means the
        // slower, tolerant state path.
        let schema_fingerprint =
            panic::catch("create", state::fingerprint::<M>).unwrap_or(SCHEMA_UNKNOWN);
        let this = Box::into_raw(Box::new(M::default())).cast::<c_void>();
        // SAFETY: as above; `this` is an `M` the vtable's functions take.
        unsafe { out.write(RawInstance::new(this, vtable, schema_fingerprint)) };
        Ok(())
    })
}

/// # Safety
/// `this` must be an instance made by [`create::<M>`], not used again afterwards.
unsafe extern "C" fn destroy<M: Exportable>(this: *mut c_void, error: ByteSink<'_>) -> Status {
    guarded("destroy", &error, || {
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
    name: &'static str,
    call: fn(&mut M, &mut Context),
) -> Status {
    // SAFETY: the caller guarantees `this` is a live, exclusively borrowed `M`.
    let module = unsafe { &mut *this.cast::<M>() };
    let mut ctx = Context::attached(*frame);
    guarded(name, &error, || {
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
    unsafe { on_frame::<M>(this, frame, error, "init", M::init) }
}

unsafe extern "C" fn process<M: Exportable>(
    this: *mut c_void,
    frame: &FrameInfo,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: as in `init`.
    unsafe { on_frame::<M>(this, frame, error, "process", M::process) }
}

unsafe extern "C" fn shutdown<M: Exportable>(
    this: *mut c_void,
    frame: &FrameInfo,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: as in `init`.
    unsafe { on_frame::<M>(this, frame, error, "shutdown", M::shutdown) }
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
    guarded("save_state", &error, || {
        let bytes = state::save(module, format_from_raw(format)?).map_err(|e| e.to_string())?;
        out.write(&bytes);
        Ok(())
    })
}

unsafe extern "C" fn save_state_into<M: Exportable>(
    this: *mut c_void,
    format: u32,
    mut out: StateBuffer<'_>,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: as in `init`.
    let module = unsafe { &*this.cast::<M>() };
    guarded("save_state", &error, || {
        state::save_into(module, format_from_raw(format)?, |len| out.reserve(len))
            .map_err(|e| e.to_string())
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
    guarded("load_state", &error, || {
        *module = state::restore(bytes, format_from_raw(format)?).map_err(|e| e.to_string())?;
        Ok(())
    })
}

unsafe extern "C" fn restore_state<M: Exportable>(
    this: *mut c_void,
    format: u32,
    bytes: RawBytes,
    from_version: u32,
    out: ByteSink<'_>,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: as in `init`.
    let module = unsafe { &mut *this.cast::<M>() };
    // SAFETY: the host passes bytes valid for this call.
    let bytes = unsafe { bytes.as_slice() };
    guarded("restore_state", &error, || {
        let format = format_from_raw(format)?;
        let (value, report) =
            crate::migrate::restore::<M>(bytes, format, from_version, M::VERSION)?;
        *module = value;
        out.write(&report.encode());
        Ok(())
    })
}

/// The `configure` entry of a module whose config type is `C`.
///
/// # Safety
/// `this` must be a live instance made by [`create::<M>`], used by no other thread; the
/// host passes `config` valid for the call.
pub unsafe extern "C" fn configure<M: Configure<Config = C>, C>(
    this: *mut c_void,
    config: RawBytes,
    mode: u32,
    out: ByteSink<'_>,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: the caller guarantees `this` is a live, exclusively borrowed `M`.
    let module = unsafe { &mut *this.cast::<M>() };
    // SAFETY: the caller passes bytes valid for this call.
    let config = unsafe { config.as_slice() };
    let refusal =
        |issue: ConfigIssue| serde_json::to_string(&issue).expect("an issue is plain data");
    guarded("configure", &error, || {
        let (lenient, partial) = match mode {
            CONFIG_STRICT => (false, false),
            CONFIG_LENIENT => (true, false),
            CONFIG_PARTIAL => (false, true),
            other => {
                return Err(format!(
                    "unknown config mode {other}: the host is newer than this module's SDK"
                ));
            }
        };
        let given: serde_json::Value = serde_json::from_slice(config).map_err(|e| {
            refusal(ConfigIssue {
                field: Default::default(),
                message: format!("the host sent a config that is not JSON: {e}"),
            })
        })?;
        // A partial update comes as `[config in force, patch]`.
        let (given, base) = match (partial, &given) {
            (true, serde_json::Value::Array(pair)) if pair.len() == 2 => (&pair[1], Some(&pair[0])),
            (true, _) => {
                return Err(refusal(ConfigIssue {
                    field: Default::default(),
                    message: "the host sent a partial update without the config in force".into(),
                }));
            }
            (false, given) => (given, None),
        };
        let applied = crate::config::apply(module, given, base, lenient).map_err(refusal)?;
        out.write(&serde_json::to_vec(&applied).expect("a config in force is JSON"));
        Ok(())
    })
}

unsafe extern "C" fn health<M: Exportable>(
    this: *mut c_void,
    out: ByteSink<'_>,
    error: ByteSink<'_>,
) -> Status {
    // SAFETY: as in `init` (read only).
    let module = unsafe { &*this.cast::<M>() };
    guarded("health", &error, || {
        out.write(&encode_health(&module.health()));
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
        pub static __GROVE_MODULE_HEADER: $crate::abi::ModuleHeader = $crate::__private::header(
            $name,
            $type_name,
            cfg!(panic = "unwind"),
            <$ty as $crate::__private::ModuleVersion>::VERSION,
        );

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
                    &__GROVE_MODULE_HEADER,
                )
            }
        }
    };
}
