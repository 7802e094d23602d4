//! [`LibraryWatcher`]: notices when a module's library file has been replaced by a complete
//! new version.
//!
//! The watch is on the file's parent directory: builds replace the file (cargo removes it
//! and hard-links the new one in, others rename a temporary file over it), and an inotify
//! watch on the file itself would follow the old inode away.
//!
//! There is no fixed debounce. Every event that may have changed the file (created, written,
//! closed after writing, renamed into place) makes a background thread read it, and the
//! file is taken as soon as it is complete: a valid ELF shared object whose sections all lie
//! inside the file, with content that differs from the version last reported. A partial file
//! waits for the writer's next event; because some writers never close the file (or write
//! through a mapping), a partial file is also re-checked a few times shortly after. The hash
//! check is what turns the many events of one build into one report.
//!
//! What inotify reports on Linux (notify 8), per way of replacing the file:
//! - cargo's uplift (remove, then hard link): `Remove`, `Create(File)`.
//! - rename over (write a temporary file, rename it): `Modify(Name(To))` and
//!   `Modify(Name(Both))` for the library, after the temporary file's own events.
//! - rewrite in place (truncate and write): `Access(Open)`, `Modify(Data)` for each write,
//!   `Access(Close(Write))`.
//! - delete then create: `Remove`, `Create(File)`, then as for a rewrite.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::ffi::library::Snapshot;

/// Delays between the re-checks of a file found partial, for writers that never close it.
/// A file still partial at the last one (about two seconds after it was first seen so, with
/// no event since) is reported: it is not a build in progress but a file that will never
/// be a module (empty, text, truncated, another kind of file).
const RECHECK_DELAYS: [Duration; 5] = [
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(1600),
];

/// A library file that cannot be watched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The directory that holds the library does not exist.
    #[error(
        "cannot watch {path}: its directory {dir} does not exist; build the library before \
         watching it"
    )]
    NoDirectory {
        /// The library file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },

    /// The OS refused the watch.
    #[error(
        "cannot watch {dir} for changes to {path}: {source}; if the limit on inotify watches \
         or instances is reached, raise fs.inotify.max_user_watches or max_user_instances"
    )]
    Notify {
        /// The library file.
        path: PathBuf,
        /// The directory watched.
        dir: PathBuf,
        /// What notify said.
        #[source]
        source: notify::Error,
    },

    /// The thread that reads and checks the file could not be started.
    #[error("cannot start the thread watching {path}: {source}")]
    Thread {
        /// The library file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// A complete new version of the watched library.
pub(crate) struct NewLibrary {
    /// The library file, as given to [`LibraryWatcher::new`].
    pub path: PathBuf,
    /// The whole file, read once (load from these bytes, not from the file, which a new
    /// build may already be rewriting), its hash, and what the descriptor said of it.
    pub snapshot: Snapshot,
    /// When the file was found complete.
    pub detected: Instant,
}

impl fmt::Debug for NewLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewLibrary")
            .field("path", &self.path)
            .field("bytes", &self.snapshot.bytes.len())
            .field("hash", &format_args!("{:016x}", self.snapshot.hash))
            .field("detected", &self.detected)
            .finish()
    }
}

/// Watches one library file and keeps the newest complete version that differs from the
/// one running. Dropping it stops its thread.
#[derive(Debug)]
pub(crate) struct LibraryWatcher {
    path: PathBuf,
    /// Shared with the checker: the version it will not report again.
    last_hash: Arc<AtomicU64>,
    newest: Arc<Mutex<Option<NewLibrary>>>,
    /// Why the file at the path is not a module, once it has stayed so for a while.
    invalid: Arc<Mutex<Option<String>>>,
    stop: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

enum Message {
    Event(notify::Result<notify::Event>),
    Stop,
}

impl LibraryWatcher {
    /// Watches the library at `path`. `loaded_hash` is the xxh3 of the version running now
    /// (`Library::content_hash`): that version is not reported again. The file is checked
    /// once at the start, so a version completed before the watch began is not missed.
    pub(crate) fn new(path: &Path, loaded_hash: u64) -> Result<Self, WatchError> {
        // Through a symlink, what is rebuilt is the file it points to: watch that file's
        // directory (and the link's, so that re-pointing the link is seen too).
        let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let (link_dir, link_name) = split(path);
        let (dir, name) = split(&target);
        if !dir.is_dir() {
            return Err(WatchError::NoDirectory {
                path: path.to_owned(),
                dir,
            });
        }
        let (sender, receiver) = mpsc::channel();
        let events = sender.clone();
        let watcher = notify::recommended_watcher(move |event| {
            let _ = events.send(Message::Event(event));
        })
        .and_then(|mut watcher| {
            watcher.watch(&dir, RecursiveMode::NonRecursive)?;
            if link_dir != dir && link_dir.is_dir() {
                watcher.watch(&link_dir, RecursiveMode::NonRecursive)?;
            }
            Ok(watcher)
        })
        .map_err(|source| WatchError::Notify {
            path: path.to_owned(),
            dir: dir.clone(),
            source,
        })?;
        let newest = Arc::new(Mutex::new(None));
        let invalid = Arc::new(Mutex::new(None));
        let last_hash = Arc::new(AtomicU64::new(loaded_hash));
        let mut checker = Checker {
            path: path.to_owned(),
            dir: dir.clone(),
            names: [name, link_name],
            last_hash: Arc::clone(&last_hash),
            last_partial: None,
            newest: Arc::clone(&newest),
            invalid: Arc::clone(&invalid),
            watcher,
        };
        let thread = std::thread::Builder::new()
            .name("grove-library-watcher".into())
            .spawn(move || checker.run(&receiver))
            .map_err(|source| WatchError::Thread {
                path: path.to_owned(),
                source,
            })?;
        tracing::debug!(path = %path.display(), dir = %dir.display(), "watching library");
        Ok(Self {
            path: path.to_owned(),
            last_hash,
            newest,
            invalid,
            stop: sender,
            thread: Some(thread),
        })
    }

    /// The newest complete version found since the last call, if any. Versions it
    /// superseded are dropped. Never blocks on file reads.
    pub(crate) fn poll(&self) -> Option<NewLibrary> {
        self.newest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The version last reported was refused: report the file again on its next event
    /// (a `chmod` that fixes what was refused, a `touch`), not only when its content
    /// changes. `running` is the hash of the version that keeps running.
    pub(crate) fn retry_refused(&self, running: u64) {
        self.last_hash.store(running, Ordering::SeqCst);
    }

    /// The watched path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Why the file at the watched path is not a module library, when it has stayed so
    /// (no new event) for a couple of seconds: reported once per such file.
    pub(crate) fn poll_invalid(&self) -> Option<String> {
        self.invalid
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Drop for LibraryWatcher {
    fn drop(&mut self) {
        let _ = self.stop.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The directory to watch and the file's name in it.
fn split(path: &Path) -> (PathBuf, OsString) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().unwrap_or(path.as_os_str()).to_owned();
    (dir, name)
}

/// The background side: reads and checks the file when events say it may have changed.
struct Checker {
    path: PathBuf,
    /// The directory watched: the file's parent (the parent of the file a symlink at
    /// `path` points to).
    dir: PathBuf,
    /// The names whose events concern the file: the file's, and the symlink's.
    names: [OsString; 2],
    /// The version last reported (or running): not reported again.
    last_hash: Arc<AtomicU64>,
    /// Why the file was last found partial.
    last_partial: Option<String>,
    newest: Arc<Mutex<Option<NewLibrary>>>,
    invalid: Arc<Mutex<Option<String>>>,
    /// Owned here, so the watch can be renewed when the directory comes back.
    watcher: RecommendedWatcher,
}

/// How often a deleted directory (`cargo clean`) is looked for again.
const LOST_DIRECTORY_POLL: Duration = Duration::from_millis(200);

/// What a check of the file found.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// A complete new version, now waiting in `newest`.
    New,
    /// The version last reported (or running).
    Same,
    /// A file still being written, or not a library.
    Partial,
    /// No file (removed, between a delete and a create).
    Missing,
}

impl Checker {
    fn run(&mut self, receiver: &mpsc::Receiver<Message>) {
        self.check();
        // While a partial file is being re-checked: when the next re-check is due, and
        // which of `RECHECK_DELAYS` it is.
        let mut recheck: Option<(Instant, usize)> = None;
        loop {
            let message = match recheck {
                Some((due, _)) => {
                    match receiver.recv_timeout(due.saturating_duration_since(Instant::now())) {
                        Ok(message) => Some(message),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                None => match receiver.recv() {
                    Ok(message) => Some(message),
                    Err(mpsc::RecvError) => return,
                },
            };
            let Some(message) = message else {
                // A re-check is due.
                let attempt = recheck.take().map_or(0, |(_, attempt)| attempt);
                if self.check() == Found::Partial {
                    if attempt + 1 < RECHECK_DELAYS.len() {
                        recheck = Some((Instant::now() + RECHECK_DELAYS[attempt + 1], attempt + 1));
                    } else if let Some(reason) = self.last_partial.take() {
                        tracing::debug!(path = %self.path.display(), reason, "library stays incomplete");
                        *self.invalid.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
                    }
                }
                continue;
            };
            // Take every event already queued: one check covers them all.
            let mut concerns_file = false;
            let mut next = Some(message);
            while let Some(message) = next {
                match message {
                    Message::Stop => return,
                    Message::Event(event) => concerns_file |= self.concerns_file(&event),
                }
                next = receiver.try_recv().ok();
            }
            if !self.dir.is_dir() {
                // The directory went (`cargo clean`), and the kernel dropped its watch with
                // it: wait for it to come back and watch it anew.
                recheck = None;
                if !self.rewatch_when_back(receiver) {
                    return;
                }
                concerns_file = true;
            }
            if !concerns_file {
                continue;
            }
            recheck = match self.check() {
                Found::Partial => Some((Instant::now() + RECHECK_DELAYS[0], 0)),
                _ => None,
            };
        }
    }

    /// Waits until the watched directory exists again, then watches it. Returns `false`
    /// when told to stop first.
    fn rewatch_when_back(&mut self, receiver: &mpsc::Receiver<Message>) -> bool {
        tracing::info!(dir = %self.dir.display(), "library directory removed; watching for it to come back");
        loop {
            match receiver.recv_timeout(LOST_DIRECTORY_POLL) {
                Ok(Message::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return false,
                // Events about the old directory carry nothing now.
                Ok(Message::Event(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if !self.dir.is_dir() {
                continue;
            }
            let _ = self.watcher.unwatch(&self.dir);
            match self.watcher.watch(&self.dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::info!(dir = %self.dir.display(), "library directory back; watching it again");
                    return true;
                }
                // Gone again between the look and the watch: keep looking.
                Err(e) => {
                    tracing::debug!(dir = %self.dir.display(), error = %e, "cannot watch yet")
                }
            }
        }
    }

    /// Whether `event` may mean the file has new content.
    fn concerns_file(&self, event: &notify::Result<notify::Event>) -> bool {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "library watch error");
                return true;
            }
        };
        if event.need_rescan() {
            return true;
        }
        let is_file = |p: &PathBuf| {
            p.file_name()
                .is_some_and(|name| self.names.iter().any(|n| n == name))
        };
        match event.kind {
            // Moved away: nothing to read until something takes its place.
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => false,
            // [from, to]: only the destination matters.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                event.paths.last().is_some_and(is_file)
            }
            EventKind::Create(_)
            | EventKind::Modify(_)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Any
            | EventKind::Other => event.paths.is_empty() || event.paths.iter().any(is_file),
            EventKind::Access(_) | EventKind::Remove(_) => false,
        }
    }

    /// Reads the file and, if it is a complete new version, makes it the newest.
    fn check(&mut self) -> Found {
        let (bytes, resolved, metadata) = match read_if_complete(&self.path) {
            Ok(Ok(read)) => read,
            Ok(Err(reason)) => {
                tracing::trace!(path = %self.path.display(), reason, "library not complete yet");
                self.last_partial = Some(reason);
                return Found::Partial;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Found::Missing,
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "cannot read library");
                self.last_partial = Some(format!("it cannot be read: {e}"));
                return Found::Partial;
            }
        };
        self.last_partial = None;
        let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
        if hash == self.last_hash.load(Ordering::SeqCst) {
            return Found::Same;
        }
        self.last_hash.store(hash, Ordering::SeqCst);
        let detected = Instant::now();
        tracing::debug!(
            path = %self.path.display(),
            bytes = bytes.len(),
            hash = %format_args!("{hash:016x}"),
            "new library version complete"
        );
        let new = NewLibrary {
            path: self.path.clone(),
            snapshot: Snapshot {
                bytes,
                hash,
                resolved,
                metadata,
            },
            detected,
        };
        *self.newest.lock().unwrap_or_else(PoisonError::into_inner) = Some(new);
        Found::New
    }
}

/// Reads the file if it is a complete ELF shared object; otherwise says why not. The ELF
/// header is read first: a file too short for its own section table is not read further.
///
/// The bytes are a snapshot only if the file did not change while it was read: a writer
/// that truncates and rewrites in place while this reads would otherwise hand over the
/// start of one version stitched to the rest of another (seen in practice: an old header
/// whose section table offset lands inside the new file's data). Size, mtime and ctime
/// are compared before and after; any difference means "not yet", and the next event or
/// re-check reads again.
/// Also returns the file's real path (through symlinks) and its metadata, both from the
/// descriptor read.
#[allow(clippy::type_complexity)]
fn read_if_complete(
    path: &Path,
) -> io::Result<Result<(Vec<u8>, PathBuf, std::fs::Metadata), String>> {
    let mut file = File::open(path)?;
    let before = file.metadata()?;
    let len = before.len();
    if len == 0 {
        return Ok(Err("the file is empty".into()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    (&mut file).take(64).read_to_end(&mut bytes)?;
    match section_table_end(&bytes) {
        None => {
            return Ok(Err(
                "it has no ELF header: a text file or another kind of file, not a shared library"
                    .into(),
            ));
        }
        Some(end) if end > len => {
            return Ok(Err(format!(
                "it is {len} bytes long but its ELF section table ends at byte {end}: a \
                 truncated file"
            )));
        }
        Some(_) => {}
    }
    file.read_to_end(&mut bytes)?;
    let after = file.metadata()?;
    if !same_version(&before, &after) || bytes.len() as u64 != after.len() {
        return Ok(Err("the file changed while it was read".into()));
    }
    let resolved = crate::ffi::staging::opened_path(&file, path);
    Ok(crate::ffi::elf::check_complete(&bytes).map(|()| (bytes, resolved, after)))
}

/// Whether two `stat`s of one open file show the same content version.
fn same_version(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.len() == b.len()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
        && a.ctime() == b.ctime()
        && a.ctime_nsec() == b.ctime_nsec()
}

/// Where the section header table ends, from the ELF header in `header`; `None` if it is
/// not an ELF header.
fn section_table_end(header: &[u8]) -> Option<u64> {
    if header.get(..4)? != b"\x7fELF" {
        return None;
    }
    let little_endian = match header.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let uint = |at: usize, size: usize| -> Option<u64> {
        let field = header.get(at..at + size)?;
        let mut value = [0u8; 8];
        if little_endian {
            value[..size].copy_from_slice(field);
            Some(u64::from_le_bytes(value))
        } else {
            value[8 - size..].copy_from_slice(field);
            Some(u64::from_be_bytes(value))
        }
    };
    // e_shoff, e_shentsize, e_shnum for ELF32 and ELF64.
    let (offset, entry_size, count) = match header.get(4)? {
        1 => (uint(0x20, 4)?, uint(0x2e, 2)?, uint(0x30, 2)?),
        2 => (uint(0x28, 8)?, uint(0x3a, 2)?, uint(0x3c, 2)?),
        _ => return None,
    };
    if offset == 0 {
        return Some(0);
    }
    // A count of 0 with a table means the real count is in the first entry: at least one.
    offset.checked_add(entry_size.checked_mul(count.max(1))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;

    /// Two different, valid ELF shared objects from this machine.
    fn two_libraries() -> (Vec<u8>, Vec<u8>) {
        let candidates = [
            "/lib/x86_64-linux-gnu/libdl.so.2",
            "/lib/x86_64-linux-gnu/librt.so.1",
            "/lib/x86_64-linux-gnu/libpthread.so.0",
            "/lib/x86_64-linux-gnu/libm.so.6",
            "/lib/aarch64-linux-gnu/libdl.so.2",
            "/lib/aarch64-linux-gnu/librt.so.1",
            "/lib/aarch64-linux-gnu/libm.so.6",
            "/lib64/libdl.so.2",
            "/lib64/librt.so.1",
            "/lib64/libm.so.6",
            "/usr/lib/libdl.so.2",
            "/usr/lib/librt.so.1",
            "/usr/lib/libm.so.6",
        ];
        let mut found: Vec<Vec<u8>> = Vec::new();
        for candidate in candidates {
            let Ok(bytes) = std::fs::read(candidate) else {
                continue;
            };
            if crate::ffi::elf::check_complete(&bytes).is_ok() && !found.contains(&bytes) {
                found.push(bytes);
            }
            if found.len() == 2 {
                let second = found.pop().unwrap();
                return (found.pop().unwrap(), second);
            }
        }
        panic!("need two different ELF shared libraries among {candidates:?}");
    }

    struct Setup {
        _dir: tempfile::TempDir,
        path: PathBuf,
        first: Vec<u8>,
        second: Vec<u8>,
    }

    /// A directory holding `libmodule.so` with the first library; the watcher is told that
    /// version is loaded.
    fn setup() -> (Setup, LibraryWatcher) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libmodule.so");
        let (first, second) = two_libraries();
        std::fs::write(&path, &first).unwrap();
        let watcher = LibraryWatcher::new(&path, xxhash_rust::xxh3::xxh3_64(&first)).unwrap();
        let setup = Setup {
            _dir: dir,
            path,
            first,
            second,
        };
        (setup, watcher)
    }

    /// The next report, waiting up to a few seconds.
    fn next_report(watcher: &LibraryWatcher) -> Option<NewLibrary> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(new) = watcher.poll() {
                return Some(new);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// No report within the re-check window and some margin.
    fn assert_quiet(watcher: &LibraryWatcher) {
        let quiet = RECHECK_DELAYS.iter().sum::<Duration>() + Duration::from_millis(300);
        let deadline = Instant::now() + quiet;
        while Instant::now() < deadline {
            if let Some(new) = watcher.poll() {
                panic!("unexpected report: {new:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn assert_reports(watcher: &LibraryWatcher, setup: &Setup, expected: &[u8]) {
        let new = next_report(watcher).expect("the new version was not reported");
        assert_eq!(new.path, setup.path);
        assert!(
            new.snapshot.bytes == expected,
            "reported bytes are not the new version"
        );
        assert_eq!(new.snapshot.hash, xxhash_rust::xxh3::xxh3_64(expected));
        assert!(new.detected <= Instant::now());
        assert_quiet(watcher);
    }

    #[test]
    fn rename_over_is_reported_once() {
        let (setup, watcher) = setup();
        let tmp = setup.path.with_file_name(".libmodule.so.tmp");
        std::fs::write(&tmp, &setup.second).unwrap();
        std::fs::rename(&tmp, &setup.path).unwrap();
        assert_reports(&watcher, &setup, &setup.second);
    }

    #[test]
    fn rewrite_in_place_is_reported_once() {
        let (setup, watcher) = setup();
        // Truncates and writes in several writes.
        let mut file = File::create(&setup.path).unwrap();
        for chunk in setup.second.chunks(4096) {
            file.write_all(chunk).unwrap();
        }
        drop(file);
        assert_reports(&watcher, &setup, &setup.second);
    }

    #[test]
    fn delete_then_create_is_reported_once() {
        let (setup, watcher) = setup();
        std::fs::remove_file(&setup.path).unwrap();
        std::fs::write(&setup.path, &setup.second).unwrap();
        assert_reports(&watcher, &setup, &setup.second);
    }

    #[test]
    fn hard_link_into_place_is_reported_once() {
        // What cargo does when it uplifts a library from deps/.
        let (setup, watcher) = setup();
        let built = setup.path.with_file_name("libmodule-0123abcd.so");
        std::fs::write(&built, &setup.second).unwrap();
        std::fs::remove_file(&setup.path).unwrap();
        std::fs::hard_link(&built, &setup.path).unwrap();
        assert_reports(&watcher, &setup, &setup.second);
    }

    #[test]
    fn a_file_written_in_two_halves_is_reported_when_complete() {
        let (setup, watcher) = setup();
        let (head, tail) = setup.second.split_at(setup.second.len() / 2);
        let mut file = File::create(&setup.path).unwrap();
        file.write_all(head).unwrap();
        file.flush().unwrap();
        // Past every re-check: a writer that pauses.
        assert_quiet(&watcher);
        file.write_all(tail).unwrap();
        // Still open: found by the event of the write (or a re-check), not the close.
        let new = next_report(&watcher).expect("the completed file was not reported");
        assert!(new.snapshot.bytes == setup.second);
        drop(file);
        assert_quiet(&watcher);
    }

    #[test]
    fn the_same_content_rewritten_is_not_reported() {
        let (setup, watcher) = setup();
        std::fs::write(&setup.path, &setup.first).unwrap();
        let tmp = setup.path.with_file_name("tmp");
        std::fs::write(&tmp, &setup.first).unwrap();
        std::fs::rename(&tmp, &setup.path).unwrap();
        assert_quiet(&watcher);
    }

    #[test]
    fn a_file_that_is_not_elf_is_not_reported() {
        let (setup, watcher) = setup();
        std::fs::write(&setup.path, b"not a library, just text\n").unwrap();
        assert_quiet(&watcher);
        // Nor a truncated library.
        std::fs::write(&setup.path, &setup.second[..setup.second.len() - 100]).unwrap();
        assert_quiet(&watcher);
    }

    #[test]
    fn only_the_newest_version_is_kept() {
        let (setup, watcher) = setup();
        // Waits until `bytes` is the version kept, without taking it.
        let wait_until_kept = |bytes: &[u8]| {
            let hash = xxhash_rust::xxh3::xxh3_64(bytes);
            let deadline = Instant::now() + Duration::from_secs(5);
            while watcher
                .newest
                .lock()
                .unwrap()
                .as_ref()
                .map(|n| n.snapshot.hash)
                != Some(hash)
            {
                assert!(Instant::now() < deadline, "the version was not found");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        std::fs::write(&setup.path, &setup.second).unwrap();
        wait_until_kept(&setup.second);
        // The loaded version again: it differs from the last one found, so it is new.
        std::fs::write(&setup.path, &setup.first).unwrap();
        wait_until_kept(&setup.first);
        assert_reports(&watcher, &setup, &setup.first);
    }

    #[test]
    fn a_version_completed_before_the_watch_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libmodule.so");
        let (first, second) = two_libraries();
        std::fs::write(&path, &second).unwrap();
        let watcher = LibraryWatcher::new(&path, xxhash_rust::xxh3::xxh3_64(&first)).unwrap();
        let new = next_report(&watcher).expect("the newer file was not reported");
        assert!(new.snapshot.bytes == second);
    }

    #[test]
    fn other_files_in_the_directory_are_ignored() {
        let (setup, watcher) = setup();
        std::fs::write(setup.path.with_file_name("libother.so"), &setup.second).unwrap();
        assert_quiet(&watcher);
    }

    #[test]
    fn a_directory_removed_and_recreated_is_watched_again() {
        // As `cargo clean` then a build: the whole target directory goes, then comes back.
        let root = tempfile::tempdir().unwrap();
        let debug = root.path().join("target/debug");
        std::fs::create_dir_all(&debug).unwrap();
        let path = debug.join("libmodule.so");
        let (first, second) = two_libraries();
        std::fs::write(&path, &first).unwrap();
        let watcher = LibraryWatcher::new(&path, xxhash_rust::xxh3::xxh3_64(&first)).unwrap();
        std::fs::remove_dir_all(root.path().join("target")).unwrap();
        std::thread::sleep(LOST_DIRECTORY_POLL * 2);
        assert!(watcher.poll().is_none());
        std::fs::create_dir_all(&debug).unwrap();
        std::fs::write(&path, &second).unwrap();
        let new = next_report(&watcher).expect("the rebuilt library was not reported");
        assert!(
            new.snapshot.bytes == second,
            "reported bytes are not the rebuilt library"
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-built/libmodule.so");
        let error = LibraryWatcher::new(&path, 0).unwrap_err();
        assert!(matches!(error, WatchError::NoDirectory { .. }));
        let message = error.to_string();
        assert!(message.contains("not-built"), "{message}");
        assert!(message.contains("build the library"), "{message}");
    }

    #[test]
    fn section_table_end_reads_the_header() {
        let (first, _) = two_libraries();
        let end = section_table_end(&first[..64]).unwrap();
        assert!(end <= first.len() as u64);
        assert!(end > 64);
        assert_eq!(section_table_end(b"\x7fELF"), None);
        assert_eq!(section_table_end(b"#!/bin/sh\n"), None);
    }
}
