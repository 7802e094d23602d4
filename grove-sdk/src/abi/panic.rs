//! Keeping a module's panics inside the module, and telling the host what they said.
//!
//! Every ABI function runs the author's code under [`catch`]. A loaded library has its own
//! copy of std and so its own panic hook; [`install_hook`] replaces the default one (which
//! prints to stderr) by one that records the message and location for the host.
//!
//! A panic while the thread is already unwinding from one (a `Drop` that panics during
//! unwinding) makes Rust abort the process, and nothing can contain that. The hook then
//! prints both messages and the module's name, so that the process does not die with only
//! std's "thread caused non-unwinding panic. aborting." to show for it.
//!
//! No thread-local with a destructor is used here: one would pin the library in memory
//! after `dlclose` until the thread exits.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once, OnceLock};

/// A recorded panic: the thread's key, its message, and whether a panic while unwinding
/// from it was already reported.
type Recorded = (usize, String, bool);

/// Messages recorded by the hook, keyed by the thread that panicked, until [`catch`] takes
/// them. A plain static: it has no destructor to register.
static RECORDED: Mutex<Vec<Recorded>> = Mutex::new(Vec::new());

/// The module's name, for the messages printed before an abort.
static MODULE: OnceLock<&'static str> = OnceLock::new();

thread_local! {
    /// Only its address is used, as a thread key. `u8` needs no destructor.
    static THREAD_KEY: u8 = const { 0 };
    /// The ABI call the thread is in (`"process"`, ...), empty outside one. No destructor.
    static CALL: Cell<&'static str> = const { Cell::new("") };
}

fn thread_key() -> usize {
    THREAD_KEY.with(|k| k as *const u8 as usize)
}

/// Installs the recording hook in this library's std. Only for loaded libraries: a module
/// linked statically into the host shares the host's hook and must not replace it.
pub(crate) fn install_hook(module: &'static str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = MODULE.set(module);
        panic::set_hook(Box::new(|info| {
            let message = payload_message(info.payload());
            let message = match info.location() {
                Some(at) => format!("{message} (at {}:{})", at.file(), at.line()),
                None => message,
            };
            record(message);
        }));
    });
}

/// Keeps `message` for [`catch`]; reports a panic during unwinding, which aborts.
fn record(message: String) {
    let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    let key = thread_key();
    match recorded.iter_mut().find(|(k, _, _)| *k == key) {
        // This thread panicked before its previous panic was caught: it is unwinding, and
        // a panic that escapes a destructor now makes Rust abort the process.
        Some((_, first, reported)) => {
            if *reported {
                eprintln!("  then: {message}");
            } else {
                let module = MODULE.get().copied().unwrap_or("?");
                let call = CALL.with(Cell::get);
                let call = if call.is_empty() { "a call" } else { call };
                eprintln!(
                    "grove: module `{module}` panicked in {call} while already panicking; \
                     unless it is caught, Rust aborts the process (host included).\n  \
                     first panic: {first}\n  then: {message}"
                );
                *reported = true;
            }
            first.push_str("; then, while unwinding: ");
            first.push_str(&message);
        }
        None => recorded.push((key, message, false)),
    }
}

/// Runs `f` as the ABI call `call`, turning a panic into its message.
pub(crate) fn catch<R>(call: &'static str, f: impl FnOnce() -> R) -> Result<R, String> {
    let outer = CALL.with(|c| c.replace(call));
    let result = panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let key = thread_key();
        let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
        match recorded.iter().position(|(k, _, _)| *k == key) {
            Some(i) => recorded.swap_remove(i).1,
            None => payload_message(&*payload),
        }
    });
    CALL.with(|c| c.set(outer));
    result
}

fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_message() {
        let err = catch("process", || -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert!(err.contains("boom 7"), "{err}");
        assert_eq!(catch("process", || 3).unwrap(), 3);
    }
}
