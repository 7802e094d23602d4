//! Fatal signals inside a module's code: say which module, which call and which signal
//! before the process ends.
//!
//! A segfault, bus error, illegal instruction, arithmetic trap, stack overflow or abort in
//! native code cannot be contained: the process ends, as it must. What grove adds is the
//! last line: a handler, installed once per process for SIGSEGV, SIGBUS, SIGILL, SIGFPE and
//! SIGABRT, that writes which module and call the crashing thread was in (from
//! [`ModuleCalls`](super::calls)), then puts back whatever handler was there before (std's
//! stack-overflow reporter, or the default) and lets the signal take its course, so the
//! process still dies of that signal.
//!
//! A crash outside any call into a module, on a thread a module started itself, is named
//! by where it happened: every loaded library's address range is in a table the handler
//! reads ([`CodeRanges`]), and a program counter inside one names its module.
//!
//! The handler is async-signal-safe: it reads two thread-locals and a table of atomics,
//! writes prepared bytes with `write(2)`, and calls `sigaction` and `raise`. It runs on the thread's alternate signal
//! stack (`SA_ONSTACK`): std gives one to the main thread and to the threads it starts, so
//! a stack overflow is reported too. Signals outside any module call are passed on
//! untouched.

use std::sync::OnceLock;

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use libc::{c_int, c_void, sigaction, siginfo_t};

use super::calls;

/// The signals reported, with their names and what they usually mean.
const SIGNALS: [(c_int, &str, &str); 5] = [
    (
        libc::SIGSEGV,
        "SIGSEGV",
        "invalid memory access, or a stack overflow",
    ),
    (libc::SIGBUS, "SIGBUS", "bus error"),
    (libc::SIGILL, "SIGILL", "illegal instruction"),
    (libc::SIGFPE, "SIGFPE", "arithmetic fault"),
    (libc::SIGABRT, "SIGABRT", "the process aborted"),
];

/// How many loaded libraries the crash report can name by address at once.
const RANGES: usize = 256;

/// One loaded library's addresses and its module's name; `start` 0 when free.
struct CodeRange {
    start: AtomicUsize,
    end: AtomicUsize,
    name: AtomicPtr<u8>,
    len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: CodeRange = CodeRange {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    name: AtomicPtr::new(std::ptr::null_mut()),
    len: AtomicUsize::new(0),
};

static CODE: [CodeRange; RANGES] = [FREE; RANGES];

/// A library's place in the table of code ranges; freed when dropped.
#[derive(Debug)]
pub(crate) struct CodeRanges(Option<usize>);

impl CodeRanges {
    /// Records that `start..end` holds module `name`'s library. When the table is full, the
    /// library's crashes are reported without a name, as before.
    pub(crate) fn register(start: usize, end: usize, name: &str) -> Self {
        let name = intern_name(name);
        for (i, slot) in CODE.iter().enumerate() {
            if slot.start.load(Ordering::Acquire) != 0 || slot.end.load(Ordering::Acquire) != 0 {
                continue;
            }
            // Claim it through `end`, then publish `start` last: a reader that sees a start
            // sees the rest.
            if slot
                .end
                .compare_exchange(0, end, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            slot.name.store(name.as_ptr().cast_mut(), Ordering::Release);
            slot.len.store(name.len(), Ordering::Release);
            slot.start.store(start, Ordering::Release);
            return Self(Some(i));
        }
        Self(None)
    }
}

impl Drop for CodeRanges {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            CODE[i].start.store(0, Ordering::Release);
            CODE[i].end.store(0, Ordering::Release);
        }
    }
}

/// Module names as `'static` bytes, one allocation per distinct name: the handler may read
/// a name at any time.
fn intern_name(name: &str) -> &'static [u8] {
    static NAMES: std::sync::Mutex<Vec<&'static [u8]>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = names.iter().find(|n| **n == name.as_bytes()) {
        return found;
    }
    let leaked: &'static [u8] = Box::leak(name.as_bytes().to_vec().into_boxed_slice());
    names.push(leaked);
    leaked
}

/// The module whose library holds `pc`. Async-signal-safe: atomics only.
fn module_at(pc: usize) -> Option<&'static [u8]> {
    CODE.iter().find_map(|slot| {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || pc < start || pc >= slot.end.load(Ordering::Acquire) {
            return None;
        }
        let name = slot.name.load(Ordering::Acquire);
        let len = slot.len.load(Ordering::Acquire);
        // SAFETY: names are interned for the life of the process (`intern_name`).
        Some(unsafe { std::slice::from_raw_parts(name.cast_const(), len) })
    })
}

/// The handlers that were installed before ours, by index into [`SIGNALS`].
static PREVIOUS: OnceLock<[Option<sigaction>; SIGNALS.len()]> = OnceLock::new();

/// Installs the report for fatal signals, once per process. Later calls do nothing.
pub(crate) fn install() {
    PREVIOUS.get_or_init(|| {
        let mut previous = [None; SIGNALS.len()];
        for (slot, (signal, name, _)) in previous.iter_mut().zip(SIGNALS) {
            // SAFETY: a zeroed `sigaction` is a valid value (no handler, empty mask) that
            // the calls below fill in.
            let mut action: sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_fatal_signal as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: `sa_mask` is ours to fill; `old` is written by the kernel; the
            // handler only does async-signal-safe things.
            let installed = unsafe {
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: sigaction = std::mem::zeroed();
                (libc::sigaction(signal, &action, &mut old) == 0).then_some(old)
            };
            match installed {
                Some(old) => *slot = Some(old),
                None => tracing::debug!(signal = name, "cannot install the crash report"),
            }
        }
        previous
    });
}

/// Where the handler records a crash (a state directory's `crashed` file), or null.
static MARKER: std::sync::atomic::AtomicPtr<libc::c_char> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// Makes the handler record a crash in the file at `path` (module, call, signal), for the
/// next run to read. The path is kept for the life of the process.
pub(crate) fn set_marker(path: std::ffi::CString) {
    // Every path ever set is kept (never freed): a handler running now on another thread
    // may be reading the one it replaces. A `CString`'s bytes do not move with the list.
    static KEPT: std::sync::Mutex<Vec<std::ffi::CString>> = std::sync::Mutex::new(Vec::new());
    let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    MARKER.store(path.as_ptr().cast_mut(), Ordering::SeqCst);
    kept.push(path);
}

/// Writes the crash record, if a state directory asked for one.
fn write_marker(module: &[u8], call: &[u8], signal: &str) {
    let path = MARKER.load(Ordering::SeqCst);
    if path.is_null() {
        return;
    }
    // SAFETY: `open`, `write` and `close` are async-signal-safe; `path` is the bytes of a
    // NUL-terminated `CString` kept for the life of the process.
    unsafe {
        let fd = libc::open(
            path,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        );
        if fd < 0 {
            return;
        }
        for part in [
            &b"module="[..],
            module,
            b"\ncall=",
            call,
            b"\nsignal=",
            signal.as_bytes(),
            b"\n",
        ] {
            let _ = libc::write(fd, part.as_ptr().cast(), part.len());
        }
        libc::close(fd);
    }
}

/// Writes `bytes` to stderr, ignoring errors (there is nothing else to do with them here).
fn write_stderr(bytes: &[u8]) {
    // SAFETY: `write` is async-signal-safe and reads `bytes.len()` bytes of a live slice.
    let _ = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
}

/// Whether a crash was reported already: a stack overflow is a SIGSEGV, which std's
/// handler then turns into an abort; one line says it.
static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_fatal_signal(signal: c_int, info: *mut siginfo_t, context: *mut c_void) {
    let index = SIGNALS.iter().position(|(s, _, _)| *s == signal);
    // During a call into a module: that module and call. Otherwise, on a thread a module
    // started: the module whose code was running.
    let culprit = calls::current_for_signal()
        .map(|(module, call)| (module, call.as_bytes()))
        .or_else(|| {
            // SAFETY: the kernel passes the interrupted context as a `ucontext_t`.
            let context =
                (!context.is_null()).then(|| unsafe { &*context.cast::<libc::ucontext_t>() })?;
            let (_, pc) = super::threads::interrupted_at(context)?;
            let module = module_at(usize::try_from(pc).ok()?)?;
            Some((module, &b"a thread of its own"[..]))
        });
    if let (Some(index), Some((module, call))) = (index, culprit)
        && !REPORTED.swap(true, Ordering::SeqCst)
    {
        let (_, name, meaning) = SIGNALS[index];
        for part in [
            &b"grove: module `"[..],
            module,
            b"` crashed in ",
            call,
            b": ",
            name.as_bytes(),
            b" (",
            meaning.as_bytes(),
            b"); the process ends\n",
        ] {
            write_stderr(part);
        }
        write_marker(module, call, name);
    }
    // Put the previous handler back and let the signal take its course with it.
    let previous = index.and_then(|i| PREVIOUS.get().and_then(|p| p[i]));
    // SAFETY: `sigaction` and `raise` are async-signal-safe; `previous` is the action the
    // kernel gave us (or the default), valid to install again; `info` is the kernel's.
    unsafe {
        match previous {
            Some(previous) => libc::sigaction(signal, &previous, std::ptr::null_mut()),
            None => {
                let mut default: sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut())
            }
        };
        // A fault raised by the CPU happens again when the handler returns; a signal sent
        // by `kill`, `raise` or `abort` (si_code <= 0) has to be sent again. It is blocked
        // until the handler returns, then delivered to the handler just put back.
        if info.is_null() || (*info).si_code <= 0 {
            libc::raise(signal);
        }
    }
}
