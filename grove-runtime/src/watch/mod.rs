//! Watching files for an engine: one notify watcher for everything it watches
//! ([`WatchHub`]), and one thread that reads new library files and decides when one is
//! complete ([`LibraryChecks`], with a [`LibraryWatcher`] per watched module).
//!
//! An engine therefore costs one inotify instance and two threads (notify's and the
//! checker's) however many modules, crates and config files it watches; a directory that
//! holds many of them is one inotify watch. (The staging area adds one, which deletes the
//! copies of closed libraries.)

use std::io;
use std::path::{Path, PathBuf};

mod complete;
mod hub;
mod library;

pub(crate) use hub::{Subscription, WatchHub};
pub(crate) use library::{LibraryChecks, LibraryWatcher};

/// A file or directory that cannot be watched.
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

    /// No inotify instance could be made: this user's limit is reached (each engine uses
    /// one, however many files it watches).
    #[error(
        "cannot start watching files: {source}; either this user's inotify instances are \
         used up (an engine takes one, however many files it watches; the others are other \
         programs'): raise `sysctl fs.inotify.max_user_instances=<more>` (it is {limit}), or \
         this process is out of file descriptors: raise `ulimit -n`",
        limit = read_limit("max_user_instances")
    )]
    Instances {
        /// What notify said.
        #[source]
        source: notify::Error,
    },

    /// The directory could not be watched because this user's inotify watches are used up.
    #[error(
        "cannot watch {dir}: this user's inotify watches are used up; raise the limit with \
         `sysctl fs.inotify.max_user_watches=<more>` (it is {limit})",
        limit = read_limit("max_user_watches")
    )]
    Watches {
        /// The directory.
        dir: PathBuf,
        /// What notify said.
        #[source]
        source: notify::Error,
    },

    /// The OS refused the watch for another reason.
    #[error("cannot watch {dir}: {source}")]
    Notify {
        /// The directory watched.
        dir: PathBuf,
        /// What notify said.
        #[source]
        source: notify::Error,
    },

    /// The thread that reads and checks new library files could not be started.
    #[error("cannot start the thread that checks new library files: {source}")]
    Thread {
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

impl WatchError {
    /// Making the inotify instance failed.
    fn from_instance(source: notify::Error) -> Self {
        WatchError::Instances { source }
    }

    /// Watching `dir` failed.
    fn from_watch(dir: &Path, source: notify::Error) -> Self {
        let dir = dir.to_owned();
        match &source.kind {
            notify::ErrorKind::MaxFilesWatch => WatchError::Watches { dir, source },
            notify::ErrorKind::Io(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                WatchError::Watches { dir, source }
            }
            _ => WatchError::Notify { dir, source },
        }
    }
}

/// The value of `/proc/sys/fs/inotify/<name>`, for an error message.
fn read_limit(name: &str) -> String {
    std::fs::read_to_string(Path::new("/proc/sys/fs/inotify").join(name))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}
