//! [`ModuleCalls`]: which call into which module is running, for the two observers that
//! cannot ask the module: the fatal-signal report (which module was this thread in when it
//! crashed?) and the watchdog (has this module's call been running for too long?).
//!
//! Entering a call costs two thread-local writes and one relaxed atomic store; nothing is
//! allocated and no clock is read. The thread-local pointer is what a signal handler reads,
//! so it only ever points at a `ModuleCalls` kept alive by the [`CallGuard`] that set it.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Call;

/// The calls into one module: its name, prepared for a signal handler, and the call in
/// progress.
#[derive(Debug)]
pub struct ModuleCalls {
    name: Box<str>,
    /// `sequence << 8 | call code`; call code 0 means no call is running. The sequence
    /// grows with every call, so an observer that sees the same value twice knows it is
    /// one call that has been running all along.
    state: AtomicU64,
}

/// A call in progress, as an observer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Running {
    /// Which call.
    pub(crate) call: Call,
    /// Tells this call from the next one of the same kind.
    pub(crate) token: u64,
}

thread_local! {
    /// The module this thread is running code of, or null. No destructor: a signal handler
    /// may read it, and it pins nothing.
    static CURRENT: Cell<*const ModuleCalls> = const { Cell::new(std::ptr::null()) };
    /// The call this thread is in, as a call code.
    static CURRENT_CALL: Cell<u8> = const { Cell::new(0) };
}

impl ModuleCalls {
    /// The calls into module `name`.
    pub(crate) fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            state: AtomicU64::new(0),
        })
    }

    /// The module's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Marks `call` as running on this thread until the guard drops.
    pub(crate) fn enter(&self, call: Call) -> CallGuard<'_> {
        let code = call_code(call);
        let sequence = (self.state.load(Ordering::Relaxed) >> 8) + 1;
        self.state
            .store(sequence << 8 | u64::from(code), Ordering::Relaxed);
        let outer = CURRENT.with(|c| c.replace(self));
        let outer_call = CURRENT_CALL.with(|c| c.replace(code));
        CallGuard {
            calls: self,
            outer,
            outer_call,
        }
    }

    /// The call running now, if any.
    pub(crate) fn running(&self) -> Option<Running> {
        let state = self.state.load(Ordering::Relaxed);
        let call = call_from_code((state & 0xff) as u8)?;
        Some(Running { call, token: state })
    }
}

/// Marks a call as running; restores what the thread was doing before when dropped.
#[derive(Debug)]
pub(crate) struct CallGuard<'a> {
    calls: &'a ModuleCalls,
    outer: *const ModuleCalls,
    outer_call: u8,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let sequence = self.calls.state.load(Ordering::Relaxed) >> 8;
        self.calls.state.store(sequence << 8, Ordering::Relaxed);
        CURRENT.with(|c| c.set(self.outer));
        CURRENT_CALL.with(|c| c.set(self.outer_call));
    }
}

/// The name of the module this thread is calling into, if any.
pub(crate) fn current_module() -> Option<String> {
    let calls = CURRENT.with(Cell::get);
    // SAFETY: as in `current_for_signal`: a `CallGuard` borrowing it is alive on this
    // thread.
    (!calls.is_null()).then(|| unsafe { (*calls).name.to_string() })
}

/// What this thread is running, for the fatal-signal handler: the module's name and the
/// call's. Async-signal-safe: two thread-local reads.
pub(crate) fn current_for_signal() -> Option<(&'static [u8], &'static str)> {
    let calls = CURRENT.with(Cell::get);
    if calls.is_null() {
        return None;
    }
    let call = call_from_code(CURRENT_CALL.with(Cell::get)).map_or("a call", Call::name);
    // SAFETY: `CURRENT` only points at a `ModuleCalls` while a `CallGuard` borrowing it is
    // alive on this thread, and this thread is inside that call (the signal interrupted
    // it), so the value lives at least until the handler returns; the handler does not
    // return into anything that frees it before it is done with the name.
    let name: &'static [u8] = unsafe { (*calls).name.as_bytes() };
    Some((name, call))
}

fn call_code(call: Call) -> u8 {
    Call::ALL
        .iter()
        .position(|c| *c == call)
        .map_or(0xff, |i| i as u8 + 1)
}

fn call_from_code(code: u8) -> Option<Call> {
    Call::ALL.get(usize::from(code).checked_sub(1)?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_seen_while_it_runs_and_nested_calls_restore_the_outer_one() {
        let outer = ModuleCalls::new("outer");
        let inner = ModuleCalls::new("inner");
        assert!(current_for_signal().is_none());
        assert_eq!(outer.running(), None);
        {
            let _g = outer.enter(Call::Process);
            let first = outer.running().unwrap();
            assert_eq!(first.call, Call::Process);
            assert_eq!(current_for_signal(), Some((&b"outer"[..], "process")));
            {
                let _g = inner.enter(Call::LoadState);
                assert_eq!(current_for_signal(), Some((&b"inner"[..], "load_state")));
            }
            assert_eq!(current_for_signal(), Some((&b"outer"[..], "process")));
            assert_eq!(outer.running(), Some(first), "one call, one token");
        }
        assert_eq!(outer.running(), None);
        assert!(current_for_signal().is_none());
        let _g = outer.enter(Call::Process);
        assert_ne!(outer.running().unwrap().token, 0);
    }
}
