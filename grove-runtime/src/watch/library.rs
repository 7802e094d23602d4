//! [`LibraryWatcher`]: notices when a module's library file has been replaced by a complete
//! new version; [`LibraryChecks`]: the one thread that reads and checks the files of every
//! watched library of an engine.
//!
//! The watch is on the file's parent directory, through the engine's [`WatchHub`]: builds
//! replace the file (cargo removes it and hard-links the new one in, others rename a
//! temporary file over it), and an inotify watch on the file itself would follow the old
//! inode away.
//!
//! There is no fixed debounce. Every event that may have changed the file (created, written,
//! closed after writing, renamed into place) makes the checker copy it into the staging
//! area, and the file is taken as soon as it is complete: a valid ELF shared object whose
//! sections all lie inside the file, with content that differs from the version last
//! reported. A partial file waits for the writer's next event; because some writers never
//! close the file (or write through a mapping), a partial file is also re-checked a few
//! times shortly after. The hash check is what turns the many events of one build into one
//! report. Events queued for one library when the checker gets to them make one check.
//!
//! What inotify reports on Linux (notify 8), per way of replacing the file:
//! - cargo's uplift (remove, then hard link): `Remove`, `Create(File)`.
//! - rename over (write a temporary file, rename it): `Modify(Name(To))` and
//!   `Modify(Name(Both))` for the library, after the temporary file's own events.
//! - rewrite in place (truncate and write): `Access(Open)`, `Modify(Data)` for each write,
//!   `Access(Close(Write))`.
//! - delete then create: `Remove`, `Create(File)`, then as for a rewrite.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::RecursiveMode;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};

use super::complete::stage_if_complete;
use super::{Subscription, WatchError, WatchHub};
use crate::ffi::library::Snapshot;
use crate::ffi::staging::Staging;

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

/// How often a deleted directory (`cargo clean`) is looked for again.
const LOST_DIRECTORY_POLL: Duration = Duration::from_millis(200);

/// A complete new version of a watched library.
pub(crate) struct NewLibrary {
    /// The library file, as given to [`LibraryWatcher::new`].
    pub path: PathBuf,
    /// Its private copy in the staging area (load from it, not from the file, which a new
    /// build may already be rewriting), its hash, and what the descriptor said of it.
    pub snapshot: Snapshot,
    /// When the file was found complete.
    pub detected: Instant,
}

impl fmt::Debug for NewLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewLibrary")
            .field("path", &self.path)
            .field("staged", &self.snapshot.staged.path())
            .field("hash", &format_args!("{:016x}", self.snapshot.hash))
            .field("detected", &self.detected)
            .finish()
    }
}

/// What the engine and the checker share about one watched library.
#[derive(Debug, Default)]
struct Shared {
    /// The version the checker will not report again.
    last_hash: AtomicU64,
    /// The newest complete version found and not taken yet.
    newest: Mutex<Option<NewLibrary>>,
    /// Why the file at the path is not a module, once it has stayed so for a while.
    invalid: Mutex<Option<String>>,
}

/// The engine's library checker: one thread that reads and checks new versions of every
/// watched library. Dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct LibraryChecks {
    hub: WatchHub,
    sender: mpsc::Sender<Message>,
    next_id: AtomicU64,
    thread: Option<JoinHandle<()>>,
}

enum Message {
    Add(u64, Box<Entry>),
    Remove(u64),
    Event(u64, notify::Event),
    Stop,
}

impl LibraryChecks {
    /// Starts the checker thread; libraries are watched through `hub`.
    pub(crate) fn start(hub: WatchHub) -> Result<Self, WatchError> {
        let (sender, receiver) = mpsc::channel();
        let rewatch = hub.clone();
        let thread = std::thread::Builder::new()
            .name("grove-library-checks".into())
            .spawn(move || Checker::new(rewatch).run(&receiver))
            .map_err(|source| WatchError::Thread { source })?;
        Ok(Self {
            hub,
            sender,
            next_id: AtomicU64::new(1),
            thread: Some(thread),
        })
    }
}

impl Drop for LibraryChecks {
    fn drop(&mut self) {
        let _ = self.sender.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Watches one library file and keeps the newest complete version that differs from the
/// one running. Dropping it stops the watch.
#[derive(Debug)]
pub(crate) struct LibraryWatcher {
    id: u64,
    path: PathBuf,
    shared: Arc<Shared>,
    sender: mpsc::Sender<Message>,
    _subscriptions: Vec<Subscription>,
}

impl LibraryWatcher {
    /// Watches the library at `path`. `loaded_hash` is the identity of the version running
    /// now (`Library::content_hash`, a hash of its loadable segments): that version is not reported again. New versions are
    /// copied into `staging`. The file is checked once at the start, so a version completed
    /// before the watch began is not missed.
    pub(crate) fn new(
        path: &Path,
        loaded_hash: u64,
        staging: &Arc<Staging>,
        checks: &LibraryChecks,
    ) -> Result<Self, WatchError> {
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
        let id = checks.next_id.fetch_add(1, Ordering::Relaxed);
        let names = vec![name.clone(), link_name.clone()];
        let subscribe = |dir: &Path| {
            let sender = checks.sender.clone();
            checks.hub.subscribe(
                dir,
                RecursiveMode::NonRecursive,
                names.clone(),
                Arc::new(move |event: &notify::Event| {
                    let _ = sender.send(Message::Event(id, event.clone()));
                }),
            )
        };
        let mut subscriptions = vec![subscribe(&dir)?];
        if link_dir != dir && link_dir.is_dir() {
            subscriptions.push(subscribe(&link_dir)?);
        }
        let shared = Arc::new(Shared::default());
        shared.last_hash.store(loaded_hash, Ordering::SeqCst);
        let entry = Entry {
            path: path.to_owned(),
            dir: dir.clone(),
            names: [name, link_name],
            staging: Arc::clone(staging),
            shared: Arc::clone(&shared),
            last_partial: None,
            recheck: None,
            lost: false,
        };
        let _ = checks.sender.send(Message::Add(id, Box::new(entry)));
        tracing::debug!(path = %path.display(), dir = %dir.display(), "watching library");
        Ok(Self {
            id,
            path: path.to_owned(),
            shared,
            sender: checks.sender.clone(),
            _subscriptions: subscriptions,
        })
    }

    /// The newest complete version found since the last call, if any. Versions it
    /// superseded are dropped (and their copies deleted). Never blocks on file reads.
    pub(crate) fn poll(&self) -> Option<NewLibrary> {
        self.shared
            .newest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Whether a new version waits, without taking it.
    pub(crate) fn has_new(&self) -> bool {
        self.shared
            .newest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// The version last reported was refused: report the file again on its next event
    /// (a `chmod` that fixes what was refused, a `touch`), not only when its content
    /// changes. `running` is the hash of the version that keeps running.
    pub(crate) fn retry_refused(&self, running: u64) {
        self.shared.last_hash.store(running, Ordering::SeqCst);
    }

    /// The watched path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Why the file at the watched path is not a module library, when it has stayed so
    /// (no new event) for a couple of seconds: reported once per such file.
    pub(crate) fn poll_invalid(&self) -> Option<String> {
        self.shared
            .invalid
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Drop for LibraryWatcher {
    fn drop(&mut self) {
        let _ = self.sender.send(Message::Remove(self.id));
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

/// One watched library, as the checker keeps it.
struct Entry {
    path: PathBuf,
    /// The directory watched: the file's parent (the parent of the file a symlink at
    /// `path` points to).
    dir: PathBuf,
    /// The names whose events concern the file: the file's, and the symlink's.
    names: [OsString; 2],
    staging: Arc<Staging>,
    shared: Arc<Shared>,
    /// Why the file was last found partial.
    last_partial: Option<String>,
    /// While a partial file is being re-checked: when the next re-check is due, and which
    /// of `RECHECK_DELAYS` it is.
    recheck: Option<(Instant, usize)>,
    /// Its directory is gone (`cargo clean`): looked for every [`LOST_DIRECTORY_POLL`].
    lost: bool,
}

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

/// The checker thread's side.
struct Checker {
    hub: WatchHub,
    entries: HashMap<u64, Entry>,
    /// When lost directories are looked for next.
    lost_poll: Option<Instant>,
}

impl Checker {
    fn new(hub: WatchHub) -> Self {
        Self {
            hub,
            entries: HashMap::new(),
            lost_poll: None,
        }
    }

    fn run(&mut self, receiver: &mpsc::Receiver<Message>) {
        loop {
            let due = self
                .entries
                .values()
                .filter_map(|e| e.recheck.map(|(due, _)| due))
                .chain(self.lost_poll)
                .min();
            let first = match due {
                Some(due) => {
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
            // Take every message already queued: one check per library covers them all.
            let mut to_check: Vec<u64> = Vec::new();
            let mut next = first;
            while let Some(message) = next {
                match message {
                    Message::Stop => return,
                    Message::Add(id, entry) => {
                        self.entries.insert(id, *entry);
                        to_check.push(id);
                    }
                    Message::Remove(id) => {
                        self.entries.remove(&id);
                    }
                    Message::Event(id, event) => {
                        if let Some(entry) = self.entries.get_mut(&id)
                            && !entry.lost
                            && entry.concerns_file(&event)
                            && !to_check.contains(&id)
                        {
                            to_check.push(id);
                        }
                    }
                }
                next = receiver.try_recv().ok();
            }
            for id in to_check {
                let Some(entry) = self.entries.get_mut(&id) else {
                    continue;
                };
                if !entry.dir.is_dir() {
                    // The directory went, and the kernel dropped its watch with it: look
                    // for it to come back.
                    tracing::info!(dir = %entry.dir.display(), "library directory removed; watching for it to come back");
                    entry.lost = true;
                    entry.recheck = None;
                    self.lost_poll
                        .get_or_insert_with(|| Instant::now() + LOST_DIRECTORY_POLL);
                    continue;
                }
                entry.recheck = match entry.check() {
                    Found::Partial => Some((Instant::now() + RECHECK_DELAYS[0], 0)),
                    _ => None,
                };
            }
            self.recheck_due();
            self.look_for_lost();
        }
    }

    /// Re-checks the partial files whose time has come.
    fn recheck_due(&mut self) {
        let now = Instant::now();
        for entry in self.entries.values_mut() {
            let Some((due, attempt)) = entry.recheck else {
                continue;
            };
            if due > now {
                continue;
            }
            entry.recheck = None;
            if entry.check() != Found::Partial {
                continue;
            }
            if attempt + 1 < RECHECK_DELAYS.len() {
                entry.recheck = Some((Instant::now() + RECHECK_DELAYS[attempt + 1], attempt + 1));
            } else if let Some(reason) = entry.last_partial.take() {
                tracing::debug!(path = %entry.path.display(), reason, "library stays incomplete");
                *entry
                    .shared
                    .invalid
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(reason);
            }
        }
    }

    /// Watches again the directories that came back, and checks their libraries.
    fn look_for_lost(&mut self) {
        if self.lost_poll.is_none_or(|due| due > Instant::now()) {
            return;
        }
        self.lost_poll = None;
        for entry in self.entries.values_mut().filter(|e| e.lost) {
            if !entry.dir.is_dir() {
                continue;
            }
            match self.hub.rewatch(&entry.dir) {
                Ok(()) => {
                    tracing::info!(dir = %entry.dir.display(), "library directory back; watching it again");
                    entry.lost = false;
                    entry.recheck = match entry.check() {
                        Found::Partial => Some((Instant::now() + RECHECK_DELAYS[0], 0)),
                        _ => None,
                    };
                }
                // Gone again between the look and the watch: keep looking.
                Err(e) => {
                    tracing::debug!(dir = %entry.dir.display(), error = %e, "cannot watch yet")
                }
            }
        }
        if self.entries.values().any(|e| e.lost) {
            self.lost_poll = Some(Instant::now() + LOST_DIRECTORY_POLL);
        }
    }
}

impl Entry {
    /// Whether `event` may mean the file has new content (or its directory went).
    fn concerns_file(&self, event: &notify::Event) -> bool {
        if event.need_rescan() || event.paths.contains(&self.dir) {
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

    /// Copies the file and, if it is a complete new version, makes it the newest.
    fn check(&mut self) -> Found {
        let (snapshot, mapping) = match stage_if_complete(&self.path, &self.staging) {
            Ok(Ok(staged)) => staged,
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
        let hash = snapshot.hash;
        if hash == self.shared.last_hash.load(Ordering::SeqCst) {
            return Found::Same;
        }
        self.shared.last_hash.store(hash, Ordering::SeqCst);
        tracing::debug!(
            path = %self.path.display(),
            hash = %format_args!("{hash:016x}"),
            "new library version complete"
        );
        let new = NewLibrary {
            path: self.path.clone(),
            snapshot,
            detected: Instant::now(),
        };
        let superseded = self
            .shared
            .newest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(new);
        // Unmapped once the frame thread can take the new version, not before; its copy
        // is deleted here, not under the lock.
        drop(mapping);
        drop(superseded);
        Found::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs::File;
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
            if crate::ffi::elf::check_and_hash(&bytes).is_ok() && !found.contains(&bytes) {
                found.push(bytes);
            }
            if found.len() == 2 {
                let second = found.pop().unwrap();
                return (found.pop().unwrap(), second);
            }
        }
        panic!("need two different ELF shared libraries among {candidates:?}");
    }

    /// What a watcher needs: a hub, a checker, a staging area.
    struct Service {
        hub: WatchHub,
        checks: LibraryChecks,
        staging: Arc<Staging>,
    }

    impl Service {
        fn new() -> Self {
            let hub = WatchHub::default();
            Self {
                checks: LibraryChecks::start(hub.clone()).unwrap(),
                hub,
                staging: Arc::new(Staging::new().unwrap()),
            }
        }

        fn watch(&self, path: &Path, loaded: &[u8]) -> LibraryWatcher {
            LibraryWatcher::new(
                path,
                crate::ffi::elf::check_and_hash(loaded).unwrap(),
                &self.staging,
                &self.checks,
            )
            .unwrap()
        }
    }

    struct Setup {
        _dir: tempfile::TempDir,
        path: PathBuf,
        first: Vec<u8>,
        second: Vec<u8>,
        _service: Service,
    }

    fn staged_bytes(new: &NewLibrary) -> Vec<u8> {
        std::fs::read(new.snapshot.staged.path()).unwrap()
    }

    /// A directory holding `libmodule.so` with the first library; the watcher is told that
    /// version is loaded.
    fn setup() -> (Setup, LibraryWatcher) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libmodule.so");
        let (first, second) = two_libraries();
        std::fs::write(&path, &first).unwrap();
        let service = Service::new();
        let watcher = service.watch(&path, &first);
        let setup = Setup {
            _dir: dir,
            path,
            first,
            second,
            _service: service,
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
            staged_bytes(&new) == expected,
            "reported bytes are not the new version"
        );
        assert_eq!(
            new.snapshot.hash,
            crate::ffi::elf::check_and_hash(expected).unwrap()
        );
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
        assert!(staged_bytes(&new) == setup.second);
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
            let hash = crate::ffi::elf::check_and_hash(bytes).unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while watcher
                .shared
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
        let service = Service::new();
        let watcher = service.watch(&path, &first);
        let new = next_report(&watcher).expect("the newer file was not reported");
        assert!(staged_bytes(&new) == second);
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
        let service = Service::new();
        let watcher = service.watch(&path, &first);
        std::fs::remove_dir_all(root.path().join("target")).unwrap();
        std::thread::sleep(LOST_DIRECTORY_POLL * 2);
        assert!(watcher.poll().is_none());
        std::fs::create_dir_all(&debug).unwrap();
        std::fs::write(&path, &second).unwrap();
        let new = next_report(&watcher).expect("the rebuilt library was not reported");
        assert!(
            staged_bytes(&new) == second,
            "reported bytes are not the rebuilt library"
        );
    }

    #[test]
    fn libraries_in_one_directory_share_one_watch_and_are_reported_apart() {
        // As many modules built into one target/debug: one inotify watch for them all.
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = two_libraries();
        let service = Service::new();
        let paths: Vec<PathBuf> = (0..20)
            .map(|i| dir.path().join(format!("libmodule{i}.so")))
            .collect();
        let mut watchers: Vec<LibraryWatcher> = paths
            .iter()
            .map(|path| {
                std::fs::write(path, &first).unwrap();
                service.watch(path, &first)
            })
            .collect();
        assert_eq!(service.hub.watched_dirs(), 1);
        // Half of them replaced at once.
        for path in &paths[..10] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &second).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        for (path, watcher) in paths.iter().zip(&watchers).take(10) {
            let new = next_report(watcher).expect("a replaced library was not reported");
            assert_eq!(&new.path, path);
            assert!(staged_bytes(&new) == second);
        }
        std::thread::sleep(RECHECK_DELAYS.iter().sum::<Duration>());
        for (i, watcher) in watchers.iter().enumerate() {
            assert!(
                watcher.poll().is_none(),
                "library {i} reported twice or wrongly"
            );
        }
        // The watch stays while one library needs it, and goes with the last.
        watchers.truncate(1);
        assert_eq!(service.hub.watched_dirs(), 1);
        drop(watchers);
        assert_eq!(service.hub.watched_dirs(), 0);
    }

    #[test]
    fn an_unused_new_version_leaves_no_copy_behind() {
        let (setup, watcher) = setup();
        std::fs::write(&setup.path, &setup.second).unwrap();
        let new = next_report(&watcher).expect("the new version was not reported");
        let staged = new.snapshot.staged.path().to_owned();
        assert!(staged.exists());
        drop(new);
        assert!(
            !staged.exists(),
            "the copy of a version never loaded is deleted"
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-built/libmodule.so");
        let service = Service::new();
        let error = LibraryWatcher::new(&path, 0, &service.staging, &service.checks).unwrap_err();
        assert!(matches!(error, WatchError::NoDirectory { .. }));
        let message = error.to_string();
        assert!(message.contains("not-built"), "{message}");
        assert!(message.contains("build the library"), "{message}");
    }

    #[test]
    fn section_table_end_reads_the_header() {
        use super::super::complete::section_table_end;
        let (first, _) = two_libraries();
        let end = section_table_end(&first[..64]).unwrap();
        assert!(end <= first.len() as u64);
        assert!(end > 64);
        assert_eq!(section_table_end(b"\x7fELF"), None);
        assert_eq!(section_table_end(b"#!/bin/sh\n"), None);
    }
}
