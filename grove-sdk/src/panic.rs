//! Keeping a module's panics inside the module, and telling the host what they said.
//!
//! Every ABI function runs the author's code under [`catch`]. A loaded library has its own
//! copy of std and so its own panic hook; [`install_hook`] replaces the default one (which
//! prints to stderr) by one that records the message and location for the host.
//!
//! No thread-local with a destructor is used here: one would pin the library in memory
//! after `dlclose` until the thread exits.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once};

/// Messages recorded by the hook, keyed by the thread that panicked, until [`catch`] takes
/// them. A plain static: it has no destructor to register.
static RECORDED: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());

thread_local! {
    /// Only its address is used, as a thread key. `u8` needs no destructor.
    static THREAD_KEY: u8 = const { 0 };
}

fn thread_key() -> usize {
    THREAD_KEY.with(|k| k as *const u8 as usize)
}

/// Installs the recording hook in this library's std. Only for loaded libraries: a module
/// linked statically into the host shares the host's hook and must not replace it.
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let message = payload_message(info.payload());
            let message = match info.location() {
                Some(at) => format!("{message} (at {}:{})", at.file(), at.line()),
                None => message,
            };
            let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
            let key = thread_key();
            recorded.retain(|(k, _)| *k != key);
            recorded.push((key, message));
        }));
    });
}

/// Runs `f`, turning a panic into its message.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let key = thread_key();
        let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
        match recorded.iter().position(|(k, _)| *k == key) {
            Some(i) => recorded.swap_remove(i).1,
            None => payload_message(&*payload),
        }
    })
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
        let err = catch(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert!(err.contains("boom 7"), "{err}");
        assert_eq!(catch(|| 3).unwrap(), 3);
    }
}
