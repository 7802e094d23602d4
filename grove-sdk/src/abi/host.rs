//! The module's end of its link to the host: the [`HostApi`] every call into the host goes
//! through, and [`detach`], which severs it.
//!
//! A library can outlive its use: a thread it started may still run, or a thread-local
//! destructor may pin it in memory, after the host has replaced it. Such code must never
//! reach a table the host has freed. So the table is held in one atomic pointer, every call
//! into the host counts itself in and out around its use of it, and `detach` clears the
//! pointer and waits until no call is left: from then on the library never touches the host
//! again, and the host may free the table.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{HostApi, HostApiRef};

/// The host's table, or null before `create_module` and after [`detach`].
static HOST: AtomicPtr<HostApi> = AtomicPtr::new(std::ptr::null_mut());

/// Calls into the host under way.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Makes `host` the table calls go through.
///
/// # Safety
/// `host` must point to a table that stays valid, at the same address, until [`detach`]
/// has returned 1 (or, when the host never calls it, until the library is unmapped).
pub(crate) unsafe fn attach(host: *const HostApi) -> Result<(), String> {
    if host.is_null() {
        return Err("the host passed no API table".into());
    }
    // SAFETY: the caller guarantees `host` is valid.
    if let Err(size) = unsafe { HostApiRef::from_raw(host) } {
        return Err(format!(
            "the host's API table is {size} bytes, shorter than any grove host's ({} bytes): \
             the host is not a grove host, or is corrupt",
            super::HOST_API_MIN_SIZE_V1
        ));
    }
    HOST.store(host.cast_mut(), Ordering::SeqCst);
    Ok(())
}

/// Leaves the in-flight count when dropped, also on a panic.
struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `f` with the host's table; `None` once the library is detached (or before it is
/// attached). The table stays valid for the whole of `f`.
pub(crate) fn with_host<R>(f: impl FnOnce(HostApiRef) -> R) -> Option<R> {
    // Counted in before the pointer is read: `detach` clears the pointer, then waits for
    // the count, so a call that read a live pointer is always waited for.
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight;
    let host = HOST.load(Ordering::SeqCst);
    if host.is_null() {
        return None;
    }
    // SAFETY: attached and not detached: `attach`'s caller keeps the table valid until
    // `detach` returns, and `detach` waits for this call to leave.
    let host = unsafe { HostApiRef::from_raw(host) }.ok()?;
    Some(f(host))
}

/// Whether the library is attached to a host.
pub(crate) fn is_attached() -> bool {
    !HOST.load(Ordering::SeqCst).is_null()
}

/// The vtable's `detach`: forgets the host's table, then waits up to `timeout_ns` for the
/// calls into the host that are under way. 1 when none is left, 0 when some still are (a
/// host subscriber blocked on a full pipe, say): the host must then keep its table.
pub(crate) unsafe extern "C" fn detach(timeout_ns: u64) -> u32 {
    HOST.store(std::ptr::null_mut(), Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_nanos(timeout_ns);
    loop {
        if IN_FLIGHT.load(Ordering::SeqCst) == 0 {
            return 1;
        }
        if Instant::now() >= deadline {
            return 0;
        }
        std::thread::yield_now();
    }
}
