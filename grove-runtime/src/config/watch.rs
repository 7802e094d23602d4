//! [`ConfigWatcher`]: one watch for all of an engine's config files.
//!
//! As for libraries, the watch is on each file's directory, so that an editor that saves by
//! writing a new file and renaming it over the old one is seen. A file is reported once it
//! has been quiet for [`QUIET`] (50 ms): an editor's save is several events (truncate, writes,
//! close, or a rename), and reading in the middle would see half a file. The engine then
//! compares the text with the last it read, so a save that changes nothing applies nothing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// How long a config file must see no event before it is read.
pub(crate) const QUIET: Duration = Duration::from_millis(50);

/// Paths of watched files, and when each last changed.
#[derive(Debug, Default)]
struct Shared {
    files: HashSet<PathBuf>,
    changed: HashMap<PathBuf, Instant>,
}

/// Watches config files for saves.
pub(crate) struct ConfigWatcher {
    watcher: RecommendedWatcher,
    shared: Arc<Mutex<Shared>>,
    /// Watched directories, with how many files each holds.
    dirs: HashMap<PathBuf, usize>,
}

impl std::fmt::Debug for ConfigWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigWatcher")
            .field("dirs", &self.dirs)
            .finish_non_exhaustive()
    }
}

impl ConfigWatcher {
    pub(crate) fn new() -> notify::Result<Self> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let events = Arc::clone(&shared);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if matches!(
                event.kind,
                EventKind::Access(AccessKind::Open(_) | AccessKind::Read)
            ) {
                return;
            }
            let now = Instant::now();
            let mut shared = events.lock().unwrap_or_else(PoisonError::into_inner);
            for path in event.paths {
                if shared.files.contains(&path) {
                    shared.changed.insert(path, now);
                }
            }
        })?;
        Ok(Self {
            watcher,
            shared,
            dirs: HashMap::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches `file`, an absolute path whose directory is canonical (as
    /// [`canonical_file`] makes it).
    pub(crate) fn watch(&mut self, file: &Path) -> notify::Result<()> {
        if !self.lock().files.insert(file.to_owned()) {
            return Ok(());
        }
        let dir = file.parent().unwrap_or(Path::new("/")).to_owned();
        if let Some(count) = self.dirs.get_mut(&dir) {
            *count += 1;
            return Ok(());
        }
        if let Err(e) = self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
            self.lock().files.remove(file);
            return Err(e);
        }
        self.dirs.insert(dir, 1);
        Ok(())
    }

    /// Stops watching `file`.
    pub(crate) fn unwatch(&mut self, file: &Path) {
        {
            let mut shared = self.lock();
            if !shared.files.remove(file) {
                return;
            }
            shared.changed.remove(file);
        }
        let dir = file.parent().unwrap_or(Path::new("/")).to_owned();
        if let Some(count) = self.dirs.get_mut(&dir) {
            *count -= 1;
            if *count == 0 {
                self.dirs.remove(&dir);
                let _ = self.watcher.unwatch(&dir);
            }
        }
    }

    /// The files that changed and have been quiet since for [`QUIET`]; each is reported
    /// once per burst of changes. Allocates only when there is something to report.
    pub(crate) fn settled(&self) -> Vec<PathBuf> {
        let mut shared = self.lock();
        if shared.changed.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        let ready: Vec<PathBuf> = shared
            .changed
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= QUIET)
            .map(|(path, _)| path.clone())
            .collect();
        for path in &ready {
            shared.changed.remove(path);
        }
        ready
    }
}

/// `path` made absolute with its directory resolved (symbolic links, `..`), the form
/// watched paths are compared in. The file itself need not exist.
pub(crate) fn canonical_file(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let name = absolute
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = absolute.parent().unwrap_or(Path::new("/")).canonicalize()?;
    Ok(dir.join(name))
}
