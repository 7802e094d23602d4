//! [`ConfigWatcher`]: the watch of an engine's config files, through its [`WatchHub`].
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

use notify::RecursiveMode;
use notify::event::{AccessKind, EventKind};

use crate::watch::{Subscription, WatchError, WatchHub};

/// How long a config file must see no event before it is read.
pub(crate) const QUIET: Duration = Duration::from_millis(50);

/// Paths of watched files, and when each last changed.
#[derive(Debug, Default)]
struct Shared {
    files: HashSet<PathBuf>,
    changed: HashMap<PathBuf, Instant>,
}

/// Watches config files for saves.
#[derive(Debug)]
pub(crate) struct ConfigWatcher {
    hub: WatchHub,
    shared: Arc<Mutex<Shared>>,
    /// One per watched file; the hub shares a directory's watch among them.
    subscriptions: HashMap<PathBuf, Subscription>,
}

impl ConfigWatcher {
    pub(crate) fn new(hub: WatchHub) -> Self {
        Self {
            hub,
            shared: Arc::default(),
            subscriptions: HashMap::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches `file`, an absolute path whose directory is canonical (as
    /// [`canonical_file`] makes it).
    pub(crate) fn watch(&mut self, file: &Path) -> Result<(), WatchError> {
        if self.subscriptions.contains_key(file) {
            return Ok(());
        }
        let dir = file.parent().unwrap_or(Path::new("/"));
        let names = file
            .file_name()
            .map(|n| vec![n.to_owned()])
            .unwrap_or_default();
        let shared = Arc::clone(&self.shared);
        let subscription = self.hub.subscribe(
            dir,
            RecursiveMode::NonRecursive,
            names,
            Arc::new(move |event: &notify::Event| {
                if matches!(
                    event.kind,
                    EventKind::Access(AccessKind::Open(_) | AccessKind::Read)
                ) {
                    return;
                }
                let now = Instant::now();
                let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
                let Shared { files, changed } = &mut *shared;
                if event.need_rescan() {
                    for file in files.iter() {
                        changed.insert(file.clone(), now);
                    }
                }
                for path in &event.paths {
                    if files.contains(path) {
                        changed.insert(path.clone(), now);
                    }
                }
            }),
        )?;
        self.lock().files.insert(file.to_owned());
        self.subscriptions.insert(file.to_owned(), subscription);
        Ok(())
    }

    /// Stops watching `file`.
    pub(crate) fn unwatch(&mut self, file: &Path) {
        {
            let mut shared = self.lock();
            shared.files.remove(file);
            shared.changed.remove(file);
        }
        self.subscriptions.remove(file);
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
