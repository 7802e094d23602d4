//! Threads that still run a library's code when it is retired.
//!
//! A module can start threads its author cannot join: a dependency's pool (rayon's global
//! pool, a tokio runtime) lives as long as the process. Unmapping the library under such a
//! thread crashes the host the next time the thread wakes. So before a library is closed,
//! every thread that might run its code is looked at:
//!
//! - only threads started since the library was loaded (a thread that existed before could
//!   not have been started by it), other than the retiring thread itself and grove's own
//!   module-system workers (which run module code only inside a frame, and no frame is
//!   running);
//! - for each, the kernel tells where its stack pointer and program counter are
//!   (`/proc/self/task/<tid>/syscall`), and its stack is read (through `/proc/self/mem`, a
//!   copy by the kernel, never a racy read of memory another thread is writing);
//! - who started the thread is read from the top of its stack, which is written once when
//!   the thread starts and never reused: the first code address there outside the C
//!   library is its entry point (glibc keeps `start_routine` there, and the entry's own
//!   frame follows). A thread started by the library's code is the library's; one started
//!   by the host executable is not, whatever stale values its stack holds further down (a
//!   test harness thread that ran another copy of the same library, once mapped at the
//!   same addresses, would otherwise look like one);
//! - a thread started by any other library counts when its live stack holds an address
//!   inside the library: a return address into its code, or a pointer to its data.
//!
//! A thread the kernel shows as runnable has no stack pointer to read there; it is sent a
//! real-time signal whose handler records where it was interrupted (from the signal's
//! context), and its stack is read from there. A thread that cannot be sampled either way
//! is counted as the library's: keeping a library mapped costs memory, unmapping it under
//! a thread costs the process.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Threads of this process by kernel thread id.
pub(crate) type Tid = i32;

/// grove's own threads that run module code only inside a frame (module-system workers).
static HOST_THREADS: Mutex<Vec<Tid>> = Mutex::new(Vec::new());

/// This thread's kernel id.
pub(crate) fn current_tid() -> Tid {
    // SAFETY: `gettid` has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// Marks the calling thread as one of grove's module-system workers until dropped.
#[derive(Debug)]
pub(crate) struct HostThread(());

impl HostThread {
    /// Registers the calling thread.
    pub(crate) fn register() -> Self {
        register_host_thread();
        Self(())
    }
}

impl Drop for HostThread {
    fn drop(&mut self) {
        unregister_host_thread();
    }
}

/// Marks the calling thread as one of grove's module-system workers.
pub(crate) fn register_host_thread() {
    HOST_THREADS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(current_tid());
}

/// Undoes [`register_host_thread`] for the calling thread.
pub(crate) fn unregister_host_thread() {
    let tid = current_tid();
    let mut threads = HOST_THREADS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = threads.iter().position(|t| *t == tid) {
        threads.swap_remove(i);
    }
}

/// The threads alive at some moment: what a library's retirement compares against.
#[derive(Debug, Clone, Default)]
pub(crate) struct ThreadSet(HashSet<Tid>);

impl ThreadSet {
    /// The threads alive now (empty if `/proc` cannot be read).
    pub(crate) fn now() -> Self {
        Self(tids().unwrap_or_default().into_iter().collect())
    }
}

fn tids() -> std::io::Result<Vec<Tid>> {
    Ok(std::fs::read_dir("/proc/self/task")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

/// A thread found running a library's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryThread {
    /// The kernel's thread id.
    pub tid: i32,
    /// The thread's name (`/proc/.../comm`), empty when unnamed.
    pub name: String,
    /// Whether its stack could not be read (it kept running on a CPU): counted as the
    /// library's to be safe.
    pub unchecked: bool,
}

/// The address ranges of the mappings of `path` in this process.
pub(crate) fn mapped_ranges(path: &std::path::Path) -> Vec<(u64, u64)> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let Some(path) = path.to_str() else {
        return Vec::new();
    };
    maps.lines()
        .filter(|line| {
            line.find('/')
                .is_some_and(|i| line[i..].trim_end().trim_end_matches(" (deleted)") == path)
        })
        .filter_map(|line| parse_range(line.split_whitespace().next()?))
        .collect()
}

fn parse_range(range: &str) -> Option<(u64, u64)> {
    let (start, end) = range.split_once('-')?;
    Some((
        u64::from_str_radix(start, 16).ok()?,
        u64::from_str_radix(end, 16).ok()?,
    ))
}

/// The threads started since `loaded` (other than this one and grove's workers) whose
/// stack points into the mappings of the library file `path`.
pub(crate) fn running_in(path: &std::path::Path, loaded: &ThreadSet) -> Vec<LibraryThread> {
    running_in_ranges(|| mapped_ranges(path), path.to_str(), loaded)
}

/// As [`running_in`], with the mappings' address ranges made only when a thread is to be
/// looked at.
fn running_in_ranges(
    ranges: impl FnOnce() -> Vec<(u64, u64)>,
    library: Option<&str>,
    loaded: &ThreadSet,
) -> Vec<LibraryThread> {
    let me = current_tid();
    let workers = HOST_THREADS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let candidates: Vec<Tid> = tids()
        .unwrap_or_default()
        .into_iter()
        .filter(|tid| *tid != me && !loaded.0.contains(tid) && !workers.contains(tid))
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let ranges = ranges();
    if ranges.is_empty() {
        return Vec::new();
    }
    let Ok(mem) = File::open("/proc/self/mem") else {
        // Nothing can be checked: every new thread counts.
        return candidates.into_iter().map(unchecked).collect();
    };
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let code = code_mappings(&maps);
    let executable = std::fs::read_link("/proc/self/exe")
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned));
    candidates
        .into_iter()
        .filter_map(|tid| match where_is(tid) {
            // Gone meanwhile.
            Err(()) => None,
            Ok(None) => Some(unchecked(tid)),
            Ok(Some((sp, pc))) => {
                // A stack not mapped when the map was read: cannot be checked, so it counts.
                let Some(stack) = stack_of(&maps, sp) else {
                    return Some(unchecked(tid));
                };
                let start = started_by(&mem, &code, stack);
                tracing::trace!(tid, sp, pc, ?start, "thread looked at");
                let inside = |a: u64| ranges.iter().any(|(s, e)| (*s..*e).contains(&a));
                // The entry point decides: the library's code among the first frames (a
                // `pthread_create` interposer, AddressSanitizer's, runs one or two frames
                // of its own first, in the executable), else a thread the executable
                // started is never the library's, whatever stale values lie deeper.
                let ours = if start.iter().take(ENTRY_FRAMES).any(|o| Some(*o) == library) {
                    true
                } else if start.first().copied() == executable.as_deref() {
                    false
                } else if start.iter().any(|o| Some(*o) == library) {
                    true
                } else {
                    inside(pc) || stack_points_into(&mem, sp, stack.1, &inside)
                };
                ours.then(|| LibraryThread {
                    tid,
                    name: thread_name(tid),
                    unchecked: false,
                })
            }
        })
        .collect()
}

/// The executable file mappings of the process: start, end, path.
fn code_mappings(maps: &str) -> Vec<(u64, u64, &str)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = parse_range(fields.next()?)?;
            if !fields.next()?.contains('x') {
                return None;
            }
            let path = &line[line.find('/')?..];
            Some((
                range.0,
                range.1,
                path.trim_end().trim_end_matches(" (deleted)"),
            ))
        })
        .collect()
}

/// Whether `path` is the C library or the dynamic loader, whose code starts every thread.
fn is_system(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("libc.so")
        || name.starts_with("libc-")
        || name.starts_with("ld-")
        || name.starts_with("libpthread")
}

/// The mapping that holds `sp`: the thread's stack.
fn stack_of(maps: &str, sp: u64) -> Option<(u64, u64)> {
    maps.lines()
        .filter_map(|line| parse_range(line.split_whitespace().next()?))
        .find(|(start, end)| (*start..*end).contains(&sp))
}

/// How much of the top of a stack is read to find who started its thread.
const TOP_SCAN: u64 = 256 << 10;

/// How many of the first code addresses count as the thread's entry point: the entry
/// function, after an interposer's frames.
const ENTRY_FRAMES: usize = 3;

/// How many code addresses from the top of a stack say who started its thread: the entry
/// point, and the first frames under it. More than one, because a `pthread_create`
/// interposer (AddressSanitizer's, a profiler's) starts every thread in its own code, which
/// then calls the real entry point.
const START_FRAMES: usize = 8;

/// The files whose code started the thread whose stack is `stack`, from the top: the
/// owners of its highest code addresses outside the C library (the entry point first).
fn started_by<'m>(mem: &File, code: &[(u64, u64, &'m str)], stack: (u64, u64)) -> Vec<&'m str> {
    let (start, end) = stack;
    let from = end.saturating_sub(TOP_SCAN).max(start);
    let Ok(len) = usize::try_from(end - from) else {
        return Vec::new();
    };
    let mut buffer = vec![0u8; len];
    // Reads of a stack mapping return all of it or fail; a short read leaves the top out.
    if mem.read_at(&mut buffer, from).ok() != Some(len) {
        return Vec::new();
    }
    let owners: Vec<&str> = buffer
        .chunks_exact(8)
        .rev()
        .filter_map(|word| {
            let value = u64::from_ne_bytes(word.try_into().expect("8 bytes"));
            code.iter()
                .find(|(s, e, _)| (*s..*e).contains(&value))
                .map(|(_, _, path)| *path)
        })
        .collect();
    // Above the first frame (the C library's thread start) glibc keeps the thread's
    // control block and static TLS, whose initial values can be code addresses of any
    // loaded library: only what lies below that frame says who started the thread.
    let below_start = owners.iter().position(|path| is_system(path)).unwrap_or(0);
    owners[below_start..]
        .iter()
        .copied()
        .filter(|path| !is_system(path))
        .take(START_FRAMES)
        .collect()
}

fn unchecked(tid: Tid) -> LibraryThread {
    LibraryThread {
        tid,
        name: thread_name(tid),
        unchecked: true,
    }
}

fn thread_name(tid: Tid) -> String {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
        .map(|name| name.trim_end().to_owned())
        .unwrap_or_default()
}

/// The thread's stack pointer and program counter: `Err` if it is gone, `Ok(None)` if
/// they cannot be had.
fn where_is(tid: Tid) -> Result<Option<(u64, u64)>, ()> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).map_err(|_| ())?;
    // "<nr> <six args> <sp> <pc>" in a system call, "-1 <sp> <pc>" blocked outside one,
    // "running" when runnable.
    let fields: Vec<&str> = text.split_whitespace().collect();
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    if let [.., sp, pc] = fields.as_slice()
        && let (Some(sp), Some(pc)) = (hex(sp), hex(pc))
    {
        return Ok(Some((sp, pc)));
    }
    // Runnable: interrupt it to learn where it is, a few times if it is slow to answer (a
    // loaded machine may not run it for a while).
    for attempt in 0..4 {
        if let Some(at) = sample(tid, Duration::from_millis(100 << attempt)) {
            return Ok(Some(at));
        }
        if !std::path::Path::new(&format!("/proc/self/task/{tid}")).exists() {
            return Err(());
        }
    }
    Ok(None)
}

/// The signal that samples a runnable thread.
fn sample_signal() -> libc::c_int {
    libc::SIGRTMIN() + 6
}

/// Whether the sampling handler is installed (the signal was free).
static SAMPLER: OnceLock<bool> = OnceLock::new();
/// One sample at a time.
static SAMPLING: Mutex<()> = Mutex::new(());
static SAMPLE_TID: AtomicI32 = AtomicI32::new(0);
static SAMPLE_SP: AtomicU64 = AtomicU64::new(0);
static SAMPLE_PC: AtomicU64 = AtomicU64::new(0);
static SAMPLE_DONE: AtomicBool = AtomicBool::new(false);

/// Interrupts thread `tid` to learn its stack pointer and program counter.
fn sample(tid: Tid, within: Duration) -> Option<(u64, u64)> {
    let installed = *SAMPLER.get_or_init(|| {
        // SAFETY: a zeroed `sigaction` is valid; the old action is only read; the handler
        // is async-signal-safe (atomics and `gettid`). The signal is taken only if nobody
        // handles it yet.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sample_signal(), std::ptr::null(), &mut old) != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                return false;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sample as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sample_signal(), &action, std::ptr::null_mut()) == 0
        }
    });
    if !installed {
        return None;
    }
    let _one = SAMPLING.lock().unwrap_or_else(|p| p.into_inner());
    SAMPLE_DONE.store(false, Ordering::SeqCst);
    SAMPLE_TID.store(tid, Ordering::SeqCst);
    // SAFETY: sends a signal to a thread of this process, whose handler is installed.
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sample_signal()) };
    let deadline = Instant::now() + within;
    let mut got = None;
    while sent == 0 && Instant::now() < deadline {
        if SAMPLE_DONE.load(Ordering::SeqCst) {
            got = Some((
                SAMPLE_SP.load(Ordering::SeqCst),
                SAMPLE_PC.load(Ordering::SeqCst),
            ));
            break;
        }
        std::thread::yield_now();
    }
    SAMPLE_TID.store(0, Ordering::SeqCst);
    got
}

extern "C" fn on_sample(
    _signal: libc::c_int,
    _info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    if context.is_null() || SAMPLE_TID.load(Ordering::SeqCst) != current_tid() {
        return;
    }
    // SAFETY: the kernel passes the interrupted context as a `ucontext_t`.
    let context = unsafe { &*context.cast::<libc::ucontext_t>() };
    let Some((sp, pc)) = interrupted_at(context) else {
        return;
    };
    SAMPLE_SP.store(sp, Ordering::SeqCst);
    SAMPLE_PC.store(pc, Ordering::SeqCst);
    SAMPLE_DONE.store(true, Ordering::SeqCst);
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn interrupted_at(context: &libc::ucontext_t) -> Option<(u64, u64)> {
    let registers = &context.uc_mcontext.gregs;
    Some((
        registers[libc::REG_RSP as usize] as u64,
        registers[libc::REG_RIP as usize] as u64,
    ))
}

#[cfg(target_arch = "aarch64")]
pub(crate) fn interrupted_at(context: &libc::ucontext_t) -> Option<(u64, u64)> {
    Some((context.uc_mcontext.sp, context.uc_mcontext.pc))
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(crate) fn interrupted_at(_context: &libc::ucontext_t) -> Option<(u64, u64)> {
    None
}

/// The most of a stack read when looking for library addresses.
const MAX_STACK_SCAN: u64 = 8 << 20;

/// Whether any aligned word of the live stack, from `sp` to `end`, satisfies `inside`.
fn stack_points_into(mem: &File, sp: u64, end: u64, inside: &impl Fn(u64) -> bool) -> bool {
    let start = sp & !7;
    let end = end.min(start.saturating_add(MAX_STACK_SCAN));
    let mut buffer = vec![0u8; 64 << 10];
    let mut at = start;
    while at < end {
        let want = usize::try_from(end - at)
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let Ok(read) = mem.read_at(&mut buffer[..want], at) else {
            return false;
        };
        if read == 0 {
            return false;
        }
        if buffer[..read - read % 8]
            .chunks_exact(8)
            .any(|word| inside(u64::from_ne_bytes(word.try_into().expect("8 bytes"))))
        {
            return true;
        }
        at += read as u64;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_started_by_the_host_executable_are_never_the_librarys() {
        let before = ThreadSet::now();
        // A region this test owns stands in for a library's mapping, and a thread of this
        // executable holds an address inside it.
        let region = vec![0u8; 4096];
        let base = region.as_ptr() as u64;
        let ranges = [(base, base + 4096)];
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let holder = std::thread::Builder::new()
            .name("holds-address".into())
            .spawn(move || {
                let pointer = std::hint::black_box(base + 16);
                ready_tx.send(()).unwrap();
                let _ = stop_rx.recv();
                std::hint::black_box(pointer);
            })
            .unwrap();
        ready_rx.recv().unwrap();
        let tid = |name: &str| {
            tids()
                .unwrap()
                .into_iter()
                .find(|t| thread_name(*t) == name)
        };
        let holder_tid = tid("holds-address").expect("the thread is listed");
        // Its stack is found, and its top says this executable started it.
        let (sp, _) = where_is(holder_tid).unwrap().expect("a stack pointer");
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let stack = stack_of(&maps, sp).expect("its stack is mapped");
        let mem = File::open("/proc/self/mem").unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(
            started_by(&mem, &code_mappings(&maps), stack)
                .first()
                .copied(),
            exe.to_str(),
            "the host executable started it"
        );
        // The address on its stack is there to see, yet the thread is not the library's.
        assert!(stack_points_into(&mem, sp, stack.1, &|a| (base..base
            + 4096)
            .contains(&a)));
        let found = running_in_ranges(|| ranges.to_vec(), Some("/nowhere/lib.so"), &before);
        assert!(found.iter().all(|t| t.tid != holder_tid), "{found:?}");
        // Threads that existed before the snapshot are never looked at.
        assert!(running_in_ranges(|| ranges.to_vec(), None, &ThreadSet::now()).is_empty());
        drop(stop_tx);
        holder.join().unwrap();
    }
}
