//! The staging area: a private directory where each load gets its own copy of the library,
//! and the checks a library file passes before it is copied there.
//!
//! `dlopen` caches by path and inode, so loading a rebuilt library from the path it was
//! loaded from returns the old code. Each load therefore opens a fresh copy under a unique
//! name (created with `O_EXCL`, which never follows a symlink), in a directory only this
//! user can enter (mode 0700). The directory is removed when the last
//! user of the staging area drops it; one left behind by a process that crashed is removed
//! by the next process that opens a staging area. The copy of a library closed for good is
//! deleted on a thread of the staging area's own, at the lowest priority, so that a reload
//! does not wait for the file system to free megabytes.
//!
//! Loading a library runs its code with the host's rights, so a library that anyone on the
//! machine could have replaced (world-writable, or in a world-writable directory) is
//! refused unless the host opts in with [`Staging::allow_world_writable`].

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// Name prefix of staging directories: `grove-staging-<pid>-<random>`.
const PREFIX: &str = "grove-staging-";

/// A private directory holding the copies of loaded libraries. Removed, with whatever is
/// left in it, when dropped.
#[derive(Debug)]
pub struct Staging {
    dir: tempfile::TempDir,
    next: AtomicU64,
    allow_world_writable: bool,
    /// The directory, open and locked (`flock`) for as long as it is in use (see
    /// [`remove_abandoned`]).
    _lock: Option<fs::File>,
    /// Deletes the copies of closed libraries.
    remover: Remover,
}

/// Takes `file`'s exclusive lock without waiting; `false` when another process holds it.
fn try_lock(file: &fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` on an open descriptor of ours; it only changes the lock state of the
    // file, which the kernel releases when the descriptor is closed or the process dies.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

impl Staging {
    /// A new private staging directory under the system's temporary directory. Directories
    /// left behind by crashed processes are removed first.
    pub fn new() -> Result<Self> {
        Self::new_in(&std::env::temp_dir())
    }

    /// A new private staging directory under `parent`.
    pub fn new_in(parent: &Path) -> Result<Self> {
        remove_abandoned(parent);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            // Created with this mode (not the umask's 0755): no other user may even list it.
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)
            .map_err(|source| Error::Staging {
                path: parent.to_owned(),
                source: Arc::new(source),
            })?;
        // Held for the directory's life: another process tells a live directory from an
        // abandoned one by this lock, whatever PID namespace either of them is in.
        let lock = fs::File::open(dir.path()).ok().filter(try_lock);
        Ok(Self {
            dir,
            next: AtomicU64::new(1),
            allow_world_writable: false,
            _lock: lock,
            remover: Remover::default(),
        })
    }

    /// Loads libraries even from world-writable files or directories, where another user
    /// could have replaced them. Off by default.
    pub fn allow_world_writable(mut self, allow: bool) -> Self {
        self.allow_world_writable = allow;
        self
    }

    /// Whether libraries are loaded from world-writable files and directories.
    pub fn allows_world_writable(&self) -> bool {
        self.allow_world_writable
    }

    /// The staging area shared by everything in this process that did not ask for its
    /// own; made on first use, removed when the last user drops it.
    pub fn shared() -> Result<Arc<Self>> {
        static SHARED: Mutex<Weak<Staging>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(staging) = shared.upgrade() {
            return Ok(staging);
        }
        let staging = Arc::new(Self::new()?);
        *shared = Arc::downgrade(&staging);
        Ok(staging)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Deletes the copy at `path`, of a library closed for good, on the staging area's own
    /// thread: unlinking a file of megabytes whose pages are cached (and whose blocks a
    /// filesystem mounted with `discard` trims) takes about a millisecond per 10 MB, which
    /// the frame that swapped versions would otherwise pay. Deleted here if that thread
    /// cannot be started.
    pub(crate) fn remove_later(&self, path: PathBuf) {
        if let Err(path) = self.remover.push(path) {
            let _ = fs::remove_file(path);
        }
    }

    /// Waits until the copies of the libraries closed so far are deleted from the
    /// directory. Closing (or reloading) a module deletes its old copy on another thread,
    /// shortly after; this is for a host (or a test) that counts the files.
    pub fn wait_for_removals(&self) {
        self.remover.wait();
    }

    /// Refuses a library that another user could have written, unless allowed: checked on
    /// `file`, the descriptor the library is read through (so a file swapped in after the
    /// check is not the one read), and on the directory of the file it really is (through
    /// symlinks).
    pub(crate) fn check_opened(&self, source: &Path, file: &fs::File) -> Result<()> {
        if self.allow_world_writable {
            return Ok(());
        }
        let Ok(metadata) = file.metadata() else {
            return Ok(());
        };
        self.check_metadata(source, &opened_path(file, source), &metadata)
    }

    /// As [`Staging::check_opened`], from the metadata of the open descriptor of the file
    /// at `resolved` (its real path).
    pub(crate) fn check_metadata(
        &self,
        source: &Path,
        resolved: &Path,
        metadata: &fs::Metadata,
    ) -> Result<()> {
        if self.allow_world_writable {
            return Ok(());
        }
        let refuse = |reason: String| Error::Untrusted {
            path: source.to_owned(),
            reason,
        };
        let through_link = fs::symlink_metadata(source).is_ok_and(|m| m.file_type().is_symlink());
        let shown = if through_link {
            format!(" {} (the symlink's target)", resolved.display())
        } else {
            String::new()
        };
        if metadata.permissions().mode() & 0o002 != 0 {
            return Err(refuse(format!(
                "the file{shown} is world-writable (mode {:o}): any user could replace the \
                 code this host runs; `chmod o-w` it, or allow it with \
                 Staging::allow_world_writable / EngineBuilder::allow_world_writable",
                metadata.permissions().mode() & 0o7777
            )));
        }
        // The real file's directory, and the directory of the path given (whoever can
        // write there can point a symlink elsewhere).
        let parent = |path: &Path| {
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_owned()
        };
        let mut dirs = vec![parent(resolved)];
        if fs::canonicalize(parent(source)).ok().as_deref() != Some(dirs[0].as_path()) {
            dirs.push(parent(source));
        }
        for dir in dirs {
            if let Ok(dir_meta) = fs::metadata(&dir)
                && dir_meta.permissions().mode() & 0o002 != 0
            {
                return Err(refuse(format!(
                    "its directory {} is world-writable (mode {:o}): any user could put \
                     another library (or symlink) in its place; build into a directory only \
                     you can write, or allow it with Staging::allow_world_writable / \
                     EngineBuilder::allow_world_writable",
                    dir.display(),
                    dir_meta.permissions().mode() & 0o7777
                )));
            }
        }
        Ok(())
    }

    /// A new file with a name never used before in this directory.
    fn create(&self, stem: &str) -> Result<(PathBuf, fs::File)> {
        // The thread that deletes the copy once closed starts with the first copy, not in
        // the middle of a reload.
        self.remover.start();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("{stem}-{n}.so"));
        // `create_new` is O_CREAT | O_EXCL: it fails on any existing name, a symlink
        // included, so nothing planted in the directory is ever written through.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)
            .map_err(|source| Error::Staging {
                path: path.clone(),
                source: Arc::new(source),
            })?;
        Ok((path, file))
    }

    /// Writes `bytes` to a new file with a name never used before in this directory.
    #[cfg(test)]
    pub(crate) fn stage(&self, stem: &str, bytes: &[u8]) -> Result<PathBuf> {
        use std::io::Write;
        let (path, mut file) = self.create(stem)?;
        file.write_all(bytes).map_err(|source| {
            let _ = fs::remove_file(&path);
            Error::Staging {
                path: path.clone(),
                source: Arc::new(source),
            }
        })?;
        Ok(path)
    }

    /// Copies `source` to a new file (in the kernel: `std::io::copy` between files is
    /// `copy_file_range` on Linux).
    pub(crate) fn stage_copy(
        &self,
        stem: &str,
        source: &mut fs::File,
    ) -> Result<PathBuf, StageError> {
        let (path, mut file) = self.create(stem).map_err(StageError::Staging)?;
        let copied = std::io::copy(source, &mut file);
        match copied {
            Ok(_) => Ok(path),
            Err(e) => {
                let _ = fs::remove_file(&path);
                // Reads fail on the source side (a directory, an I/O error); the staging
                // directory is ours and freshly created, so blame the source.
                Err(StageError::Read(e))
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Every copy queued is deleted before the directory goes.
        self.remover.stop();
    }
}

/// The thread that deletes the copies of closed libraries, started with the first copy.
#[derive(Debug, Default)]
struct Remover {
    shared: Arc<RemoverShared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct RemoverShared {
    queue: Mutex<RemoverQueue>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct RemoverQueue {
    paths: Vec<PathBuf>,
    /// A path taken from `paths` and being deleted.
    busy: bool,
    stop: bool,
}

impl RemoverShared {
    fn queue(&self) -> std::sync::MutexGuard<'_, RemoverQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread's loop: deletes what is queued until told to stop with nothing left.
    fn run(&self) {
        lowest_priority();
        let mut queue = self.queue();
        loop {
            if let Some(path) = queue.paths.pop() {
                queue.busy = true;
                drop(queue);
                let _ = fs::remove_file(&path);
                queue = self.queue();
                queue.busy = false;
                self.changed.notify_all();
            } else if queue.stop {
                return;
            } else {
                queue = self
                    .changed
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

/// Puts the calling thread in `SCHED_IDLE`: woken to delete a file, it must not take the
/// CPU from the frame thread that just queued it (on a busy machine the scheduler would
/// otherwise run it in the frame thread's place); it runs when a CPU has nothing else to do,
/// or gets a small share of one.
fn lowest_priority() {
    // SAFETY: a zeroed `sched_param` is valid (priority 0, the only one `SCHED_IDLE`
    // takes); the call changes only this thread's scheduling policy (pid 0: the caller).
    let failed = unsafe {
        let param: libc::sched_param = std::mem::zeroed();
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0
    };
    if failed {
        tracing::debug!(error = %std::io::Error::last_os_error(), "the staging area's thread keeps its priority");
    }
}

impl Remover {
    /// Starts the thread, if it is not running; `false` if it cannot be started.
    fn start(&self) -> bool {
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if thread.is_some() {
            return true;
        }
        let shared = Arc::clone(&self.shared);
        match std::thread::Builder::new()
            .name("grove-staging-remove".into())
            .spawn(move || shared.run())
        {
            Ok(handle) => {
                *thread = Some(handle);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot start the staging area's thread; copies are deleted where they are closed");
                false
            }
        }
    }

    /// Queues `path`; gives it back if the thread cannot be started.
    fn push(&self, path: PathBuf) -> std::result::Result<(), PathBuf> {
        if !self.start() {
            return Err(path);
        }
        self.shared.queue().paths.push(path);
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Waits until nothing is queued or being deleted.
    fn wait(&self) {
        let mut queue = self.shared.queue();
        while !queue.paths.is_empty() || queue.busy {
            queue = self
                .shared
                .changed
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Lets the thread delete what is queued, and waits for it to end.
    fn stop(&mut self) {
        self.shared.queue().stop = true;
        self.shared.changed.notify_all();
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// A file in the staging area that nothing uses yet: deleted when dropped, unless taken
/// with [`StagedFile::into_path`].
#[derive(Debug)]
pub(crate) struct StagedFile {
    path: PathBuf,
}

impl StagedFile {
    /// Takes charge of the staged file at `path`.
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The path, now the caller's to delete.
    pub(crate) fn into_path(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        // Empty once taken.
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The real path of the open `file` (symlinks resolved), or `fallback`.
pub(crate) fn opened_path(file: &fs::File, fallback: &Path) -> PathBuf {
    use std::os::fd::AsRawFd;
    fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .unwrap_or_else(|_| fallback.to_owned())
}

/// Why copying a library into the staging area failed.
#[derive(Debug)]
pub(crate) enum StageError {
    /// Reading the source failed.
    Read(std::io::Error),
    /// The staging area failed.
    Staging(Error),
}

/// Removes staging directories in `parent` whose process is gone (it crashed or was
/// killed before it could clean up). Only this user's directories are touched.
fn remove_abandoned(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    // `/proc/self` belongs to this process's effective user.
    let Ok(uid) = fs::metadata("/proc/self").map(|m| m.uid()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        // A directory's owner holds a lock on it until it exits; the kernel releases it
        // when the process dies, in any PID namespace. Without the lock, whether the pid is
        // alive here decides (a directory of an older grove, or a pid reused).
        let locked = fs::File::open(entry.path()).is_ok_and(|dir| !try_lock(&dir));
        let alive = locked || Path::new("/proc").join(pid.to_string()).exists();
        let ours = entry.metadata().is_ok_and(|m| m.is_dir() && m.uid() == uid);
        if !alive && ours {
            match fs::remove_dir_all(entry.path()) {
                Ok(()) => tracing::info!(
                    dir = %entry.path().display(),
                    pid,
                    "removed the staging directory of a process that did not exit cleanly"
                ),
                Err(e) => {
                    tracing::debug!(dir = %entry.path().display(), error = %e, "cannot remove abandoned staging directory")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn directory_is_private_and_removed_on_drop() {
        let parent = scratch();
        let staging = Staging::new_in(parent.path()).unwrap();
        let dir = staging.path().to_owned();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let staged = staging.stage("m", b"x").unwrap();
        assert!(staged.exists());
        drop(staging);
        assert!(!dir.exists());
    }

    #[test]
    fn copies_removed_later_are_gone_after_the_wait_and_before_the_directory() {
        let parent = scratch();
        let staging = Staging::new_in(parent.path()).unwrap();
        let paths: Vec<PathBuf> = (0..5)
            .map(|i| staging.stage(&format!("lib{i}"), b"bytes").unwrap())
            .collect();
        for path in &paths {
            staging.remove_later(path.clone());
        }
        staging.wait_for_removals();
        assert!(paths.iter().all(|p| !p.exists()), "every copy deleted");
        // Queued and not waited for: deleted before the directory goes.
        let last = staging.stage("last", b"bytes").unwrap();
        staging.remove_later(last);
        let dir = staging.path().to_owned();
        drop(staging);
        assert!(!dir.exists());
    }

    #[test]
    fn names_are_unique_and_symlinks_are_not_followed() {
        let parent = scratch();
        let staging = Staging::new_in(parent.path()).unwrap();
        let a = staging.stage("m", b"a").unwrap();
        let b = staging.stage("m", b"b").unwrap();
        assert_ne!(a, b);
        // Plant a symlink where the next copy will go: staging must refuse, not write
        // through it.
        let target = parent.path().join("victim");
        fs::write(&target, b"untouched").unwrap();
        let next = staging.path().join("m-3.so");
        symlink(&target, &next).unwrap();
        assert!(matches!(
            staging.stage("m", b"evil"),
            Err(Error::Staging { .. })
        ));
        assert_eq!(fs::read(&target).unwrap(), b"untouched");
    }

    #[test]
    fn abandoned_directories_of_dead_processes_are_removed() {
        let parent = scratch();
        // No process has this pid (above the kernel's pid_max limit of 2^22).
        let dead = parent.path().join(format!("{PREFIX}4999999-abc"));
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("old.so"), b"x").unwrap();
        let mine = parent
            .path()
            .join(format!("{PREFIX}{}-live", std::process::id()));
        fs::create_dir(&mine).unwrap();
        let _staging = Staging::new_in(parent.path()).unwrap();
        assert!(!dead.exists(), "a dead process's leftovers are cleaned");
        assert!(mine.exists(), "a live process's directory is left alone");
    }

    #[test]
    fn a_locked_directory_is_in_use_whatever_its_pid_says() {
        // Another PID namespace: the pid in the name is not alive here, but the directory's
        // owner holds its lock.
        let parent = scratch();
        let foreign = parent.path().join(format!("{PREFIX}4999998-ns"));
        fs::create_dir(&foreign).unwrap();
        let lock = fs::File::open(&foreign).unwrap();
        assert!(try_lock(&lock));
        let _staging = Staging::new_in(parent.path()).unwrap();
        assert!(foreign.exists(), "a directory in use is left alone");
        drop(lock);
        let _staging = Staging::new_in(parent.path()).unwrap();
        assert!(
            !foreign.exists(),
            "once its lock is released, it is abandoned"
        );
    }

    #[test]
    fn world_writable_libraries_are_refused_unless_allowed() {
        let parent = scratch();
        let staging = Staging::new_in(parent.path()).unwrap();
        let dir = parent.path().join("lib");
        fs::create_dir(&dir).unwrap();
        let lib = dir.join("libm.so");
        fs::write(&lib, b"x").unwrap();
        let check = |staging: &Staging| staging.check_opened(&lib, &fs::File::open(&lib).unwrap());
        check(&staging).unwrap();

        fs::set_permissions(&lib, fs::Permissions::from_mode(0o666)).unwrap();
        let err = check(&staging).unwrap_err().to_string();
        assert!(
            err.contains("world-writable") && err.contains("libm.so"),
            "{err}"
        );

        fs::set_permissions(&lib, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = check(&staging).unwrap_err().to_string();
        assert!(
            err.contains("directory") && err.contains("allow_world_writable"),
            "{err}"
        );

        // Through a symlink in a safe directory, the real file's directory is what counts.
        let safe = parent.path().join("safe");
        fs::create_dir(&safe).unwrap();
        let link = safe.join("libm.so");
        symlink(&lib, &link).unwrap();
        let err = staging
            .check_opened(&link, &fs::File::open(&link).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("directory") && err.contains("lib"), "{err}");

        // A symlink in a world-writable directory, to a file in a safe one: the link can be
        // re-pointed by anyone.
        let safe_lib = safe.join("libsafe.so");
        fs::write(&safe_lib, b"x").unwrap();
        let open_dir = parent.path().join("open");
        fs::create_dir(&open_dir).unwrap();
        fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o777)).unwrap();
        let open_link = open_dir.join("libsafe.so");
        symlink(&safe_lib, &open_link).unwrap();
        let err = staging
            .check_opened(&open_link, &fs::File::open(&open_link).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("open") && err.contains("symlink"), "{err}");

        let staging = staging.allow_world_writable(true);
        check(&staging).unwrap();
    }
}
