//! [`Instance`]: one live module value inside one loaded library, behind a safe API.
//!
//! The instance holds its library, so the library cannot be closed while the instance's
//! code or data is in use: dropping an `Instance` destroys the value first, then lets go
//! of the library (closed when its last instance goes).

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use grove::Health;
use grove::abi::{
    ByteSink, ConfigApplied, ConfigIssue, FieldPath, FrameInfo, RawBytes, RawInstance, StateBuffer,
    Status, VTableRef, decode_health,
};
use grove::state::{FieldReport, StateFormat};

use super::calls::ModuleCalls;
use super::host_log;
use super::library::{Library, Unmapped};
use crate::error::{Call, Error, Result};

/// A module value created by a library's `create_module`.
#[derive(Debug)]
pub(crate) struct Instance {
    this: *mut c_void,
    vtable: VTableRef,
    schema_fingerprint: u64,
    /// Which call is running, for crash reports and the watchdog.
    calls: Arc<ModuleCalls>,
    /// The host's log-interest epoch the library last heard of.
    log_epoch: u64,
    /// Dropped by hand, after the value is destroyed.
    library: ManuallyDrop<Arc<Library>>,
}

// SAFETY: a module type is `Send` (the `Module` trait requires it), the vtable is static
// data of the library, and the library handle may be used from any thread.
unsafe impl Send for Instance {}

impl Instance {
    /// Creates the library's module value, its calls marked on `calls`. On failure the
    /// library is closed.
    pub(crate) fn create(library: Library, calls: Arc<ModuleCalls>) -> Result<Self> {
        Self::create_shared(Arc::new(library), calls)
    }

    /// Creates one more module value from `library`.
    pub(crate) fn create_shared(library: Arc<Library>, calls: Arc<ModuleCalls>) -> Result<Self> {
        let mut raw = RawInstance::EMPTY;
        let mut message = Vec::new();
        let status = {
            let _call = calls.enter(Call::Create);
            // SAFETY: `create_fn` is the library's `create_module` (checked by the loader);
            // the host table lives in `library`, which is detached before it lets the table
            // go; `raw` is valid for writes.
            unsafe {
                (library.create_fn())(
                    library.host_api(),
                    &mut raw,
                    ByteSink::for_vec(&mut message),
                )
            }
        };
        let failed = |message: String| Error::Failed {
            module: library.name().to_owned(),
            path: library.source().to_owned(),
            call: Call::Create,
            message,
        };
        // The vtable is written before any of the author's code runs: remember it, so that
        // the library can be detached even when `create` failed.
        let vtable = if raw.vtable().is_null() {
            None
        } else {
            // SAFETY: the vtable is a static of the library, open while `library` lives.
            Some(unsafe { VTableRef::from_raw(raw.vtable()) })
        };
        if let Some(Ok(vtable)) = vtable {
            library.remember_vtable(vtable);
        }
        status_to_result(status, &message, &library, Call::Create)?;
        let vtable = match vtable {
            Some(Ok(vtable)) if !raw.this().is_null() => vtable,
            Some(Err(size)) => {
                return Err(failed(format!(
                    "its function table is {size} bytes, shorter than any grove module's ({})",
                    grove::abi::VTABLE_MIN_SIZE_V1
                )));
            }
            _ => return Err(failed("create_module returned no instance".into())),
        };
        Ok(Self {
            this: raw.this(),
            vtable,
            schema_fingerprint: raw.schema_fingerprint(),
            calls,
            log_epoch: host_log::interest_epoch(),
            library: ManuallyDrop::new(library),
        })
    }

    pub(crate) fn name(&self) -> &str {
        self.library.name()
    }

    pub(crate) fn library(&self) -> &Library {
        &self.library
    }

    /// The library, for one more instance of it.
    pub(crate) fn shared_library(&self) -> Arc<Library> {
        Arc::clone(&self.library)
    }

    /// The marker of this module's calls.
    pub(crate) fn calls(&self) -> &Arc<ModuleCalls> {
        &self.calls
    }

    pub(crate) fn schema_fingerprint(&self) -> u64 {
        self.schema_fingerprint
    }

    fn frame_call(&mut self, call: Call, frame: &FrameInfo) -> Result<()> {
        let epoch = host_log::interest_epoch();
        if epoch != self.log_epoch {
            self.log_epoch = epoch;
            self.library.log_interest_changed();
        }
        let function = match call {
            Call::Init => self.vtable.init(),
            Call::Process => self.vtable.process(),
            Call::Shutdown => self.vtable.shutdown(),
            _ => unreachable!("not a frame call: {call}"),
        };
        let mut message = Vec::new();
        let _call = self.calls.enter(call);
        // SAFETY: `this` is live (destroyed only in `destroy`) and `&mut self` makes this
        // the only call on it.
        let status = unsafe { function(self.this, frame, ByteSink::for_vec(&mut message)) };
        status_to_result(status, &message, &self.library, call)
    }

    pub(crate) fn init(&mut self, frame: &FrameInfo) -> Result<()> {
        self.frame_call(Call::Init, frame)
    }

    pub(crate) fn process(&mut self, frame: &FrameInfo) -> Result<()> {
        self.frame_call(Call::Process, frame)
    }

    pub(crate) fn shutdown(&mut self, frame: &FrameInfo) -> Result<()> {
        self.frame_call(Call::Shutdown, frame)
    }

    /// The state, encoded in `format`: written by the module straight into a buffer of
    /// exactly its size, or, for a library built before `save_state_into`, handed over in
    /// the module's buffer and copied.
    pub(crate) fn save_state(&mut self, format: StateFormat) -> Result<Vec<u8>> {
        let mut state = Vec::new();
        match self.vtable.save_state_into() {
            Some(_) => self.save_into(format, StateBuffer::for_vec(&mut state))?,
            None => self.save_handed_over(format, ByteSink::for_vec(&mut state))?,
        }
        Ok(state)
    }

    /// `save_state_into`, which the library has.
    fn save_into(&mut self, format: StateFormat, out: StateBuffer<'_>) -> Result<()> {
        let save_into = self
            .vtable
            .save_state_into()
            .expect("called only when the library has the entry");
        let mut message = Vec::new();
        let _call = self.calls.enter(Call::SaveState);
        // SAFETY: as in `frame_call`.
        let status = unsafe {
            save_into(
                self.this,
                format.to_raw(),
                out,
                ByteSink::for_vec(&mut message),
            )
        };
        status_to_result(status, &message, &self.library, Call::SaveState)
    }

    /// `save_state`, which every library has.
    fn save_handed_over(&mut self, format: StateFormat, out: ByteSink<'_>) -> Result<()> {
        let mut message = Vec::new();
        let _call = self.calls.enter(Call::SaveState);
        // SAFETY: as in `frame_call`.
        let status = unsafe {
            (self.vtable.save_state())(
                self.this,
                format.to_raw(),
                out,
                ByteSink::for_vec(&mut message),
            )
        };
        status_to_result(status, &message, &self.library, Call::SaveState)
    }

    /// Replaces the state with `state`, encoded in `format`.
    pub(crate) fn load_state(&mut self, format: StateFormat, state: &[u8]) -> Result<()> {
        let mut message = Vec::new();
        let _call = self.calls.enter(Call::LoadState);
        // SAFETY: as in `frame_call`; `state` is valid for the call.
        let status = unsafe {
            (self.vtable.load_state())(
                self.this,
                format.to_raw(),
                RawBytes::new(state),
                ByteSink::for_vec(&mut message),
            )
        };
        status_to_result(status, &message, &self.library, Call::LoadState)
    }

    /// Replaces the state with `state`, encoded in `format` by version `from_version` of
    /// the module (0: unknown), and returns what became of its fields; `None` for a library
    /// built before field reports existed, which is restored through `load_state`.
    pub(crate) fn restore_state(
        &mut self,
        format: StateFormat,
        state: &[u8],
        from_version: u32,
    ) -> Result<Option<FieldReport>> {
        let Some(restore) = self.vtable.restore_state() else {
            return self.load_state(format, state).map(|()| None);
        };
        let mut out = Vec::new();
        let mut message = Vec::new();
        let status = {
            let _call = self.calls.enter(Call::LoadState);
            // SAFETY: as in `frame_call`; `state` is valid for the call.
            unsafe {
                restore(
                    self.this,
                    format.to_raw(),
                    RawBytes::new(state),
                    from_version,
                    ByteSink::for_vec(&mut out),
                    ByteSink::for_vec(&mut message),
                )
            }
        };
        status_to_result(status, &message, &self.library, Call::LoadState)?;
        FieldReport::decode(&out)
            .map(Some)
            .map_err(|e| Error::Failed {
                module: self.name().to_owned(),
                path: self.library.source().to_owned(),
                call: Call::LoadState,
                message: format!("unreadable field report: {e}"),
            })
    }

    /// Hands the module `config` (a JSON table) in `mode`: the config now in force, or the
    /// problem that refused it (the module keeps what it had). `None` when the module takes
    /// no config.
    pub(crate) fn configure(
        &mut self,
        config: &[u8],
        mode: u32,
    ) -> Option<std::result::Result<ConfigApplied, ConfigIssue>> {
        let configure = self.vtable.configure()?;
        let mut out = Vec::new();
        let mut message = Vec::new();
        let _call = self.calls.enter(Call::Configure);
        // SAFETY: as in `frame_call`; `config` is valid for the call.
        let status = unsafe {
            configure(
                self.this,
                RawBytes::new(config),
                mode,
                ByteSink::for_vec(&mut out),
                ByteSink::for_vec(&mut message),
            )
        };
        let text = || String::from_utf8_lossy(&message).into_owned();
        let issue = |message: String| ConfigIssue {
            field: FieldPath::default(),
            message,
        };
        Some(match status {
            Status::OK => serde_json::from_slice(&out).map_err(|e| {
                issue(format!(
                    "the module answered with an unreadable config: {e}"
                ))
            }),
            // A refusal is a `ConfigIssue` as JSON; anything else is a message of its own.
            Status::FAILED => {
                Err(serde_json::from_slice(&message).unwrap_or_else(|_| issue(text())))
            }
            Status::PANICKED => Err(issue(format!("configure panicked: {}", text()))),
            other => Err(issue(format!(
                "unknown status {}: {}",
                other.code(),
                text()
            ))),
        })
    }

    /// The module's health report; `None` for a library built before the hook existed.
    pub(crate) fn health(&mut self) -> Result<Option<Health>> {
        let Some(health) = self.vtable.health() else {
            return Ok(None);
        };
        let mut out = Vec::new();
        let mut message = Vec::new();
        let _call = self.calls.enter(Call::Health);
        // SAFETY: as in `frame_call`.
        let status = unsafe {
            health(
                self.this,
                ByteSink::for_vec(&mut out),
                ByteSink::for_vec(&mut message),
            )
        };
        status_to_result(status, &message, &self.library, Call::Health)?;
        decode_health(&out).map(Some).map_err(|e| Error::Failed {
            module: self.name().to_owned(),
            path: self.library.source().to_owned(),
            call: Call::Health,
            message: format!("unreadable health report: {e}"),
        })
    }

    /// Destroys the value, closes the library if no other instance holds it, and says
    /// whether it left memory. A panic in the value's `Drop` is reported, after the library
    /// is closed all the same.
    pub(crate) fn retire(self) -> (Result<()>, Unmapped) {
        let mut this = ManuallyDrop::new(self);
        let destroyed = this.destroy();
        // SAFETY: `this` is never used again, and `Drop` does not run for it.
        let library = unsafe { ManuallyDrop::take(&mut this.library) };
        let unmapped = match Arc::try_unwrap(library) {
            Ok(library) => library.close(),
            Err(_shared) => Unmapped::Unknown,
        };
        // The other fields own nothing, but `calls` is an `Arc` shared with the versions
        // before and after this one: released here, or never freed.
        // SAFETY: `calls` is read out once, and `this` (whose `Drop` does not run) is never
        // used again.
        drop(unsafe { std::ptr::read(&this.calls) });
        (destroyed, unmapped)
    }

    fn destroy(&mut self) -> Result<()> {
        let mut message = Vec::new();
        let _call = self.calls.enter(Call::Destroy);
        // SAFETY: `this` is live, and is not used after this call (`retire` and `drop`
        // call this once, then only close the library).
        let status = unsafe { (self.vtable.destroy())(self.this, ByteSink::for_vec(&mut message)) };
        status_to_result(status, &message, &self.library, Call::Destroy)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Err(e) = self.destroy() {
            tracing::error!(module = %self.name(), error = %e, "destroying module value failed");
        }
        // SAFETY: `library` is not used again; `retire` never lets `Drop` run.
        unsafe { ManuallyDrop::drop(&mut self.library) };
    }
}

fn status_to_result(status: Status, message: &[u8], library: &Library, call: Call) -> Result<()> {
    if status == Status::OK {
        return Ok(());
    }
    // Only failures pay for building the error.
    let text = String::from_utf8_lossy(message).into_owned();
    let module = library.name().to_owned();
    let path = library.source().to_owned();
    Err(match status {
        Status::PANICKED => Error::Panicked {
            module,
            path: Some(path),
            call,
            message: text,
        },
        Status::FAILED => Error::Failed {
            module,
            path,
            call,
            message: text,
        },
        other => Error::Failed {
            module,
            path,
            call,
            message: format!("unknown status {}: {text}", other.code()),
        },
    })
}
