//! The staging area: a private directory where each load gets its own copy of the library.
//!
//! `dlopen` caches by path and inode, so loading a rebuilt library from the path it was
//! loaded from returns the old code. Each load therefore opens a fresh copy under a unique
//! name, in a directory only this user can enter (mode 0700, made by `tempfile`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::error::{Error, Result};

/// A private directory holding the copies of loaded libraries. Removed, with whatever is
/// left in it, when dropped.
#[derive(Debug)]
pub struct Staging {
    dir: tempfile::TempDir,
    next: AtomicU64,
}

impl Staging {
    /// A new private staging directory under the system's temporary directory.
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("grove-staging-")
            .tempdir()
            .map_err(|source| Error::Staging {
                path: std::env::temp_dir(),
                source: Arc::new(source),
            })?;
        Ok(Self {
            dir,
            next: AtomicU64::new(1),
        })
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

    /// Writes `bytes` to a new file with a name never used before in this directory.
    pub(crate) fn stage(&self, module: &str, bytes: &[u8]) -> Result<PathBuf> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("{module}-{n}.so"));
        let write = || -> std::io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            file.write_all(bytes)
        };
        write().map_err(|source| {
            let _ = fs::remove_file(&path);
            Error::Staging {
                path: path.clone(),
                source: Arc::new(source),
            }
        })?;
        Ok(path)
    }
}
