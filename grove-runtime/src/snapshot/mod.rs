//! Snapshots: each loaded module's state on disk, so that it outlives the process.
//!
//! With a state directory ([`EngineBuilder::state_dir`](crate::EngineBuilder::state_dir)),
//! the engine saves every module's state every few seconds, after every reload and at
//! shutdown: encoded on the frame thread (the module's own `save_state`), written by a
//! thread of its own, atomically ([`file::write_atomic`]). A module that loads restores
//! its snapshot through the same path as a reload. A snapshot that cannot be used is set
//! aside (renamed, never deleted) and the module starts from its default.
//!
//! The directory also says how the last run ended: a `running` file is there while an
//! engine runs and removed at a clean shutdown, and the crash handler writes `crashed`
//! (which module, which call, which signal) before the process dies.

pub(crate) mod file;
mod writer;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use file::Header;
pub use file::SnapshotProblem;
use writer::Writer;

use crate::error::{Error, Result};
use crate::loaded::LoadedModule;

/// How often snapshots are taken by default.
pub const DEFAULT_SNAPSHOT_EVERY: Duration = Duration::from_secs(5);

/// How the previous run that used a state directory ended, when not cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PreviousRun {
    /// A module crashed it: the crash handler's record.
    Crashed {
        /// The module.
        module: String,
        /// The call it was in (or `a thread of its own`).
        call: String,
        /// The signal (`SIGSEGV`, ...).
        signal: String,
    },
    /// It ended without shutting down (killed, power lost, a crash outside any module).
    Unclean,
}

impl std::fmt::Display for PreviousRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PreviousRun::Crashed {
                module,
                call,
                signal,
            } => write!(
                f,
                "the previous run crashed: module `{module}` got {signal} in {call}"
            ),
            PreviousRun::Unclean => {
                f.write_str("the previous run ended without shutting down (killed, or a crash)")
            }
        }
    }
}

/// A snapshot found for a module.
#[derive(Debug)]
pub(crate) enum Found {
    /// Its state, and how old it is.
    State {
        state: Vec<u8>,
        /// The version of the module's state that wrote it (0: unknown).
        version: u32,
        age: Duration,
        path: PathBuf,
    },
    /// A file that is not a usable snapshot, set aside.
    Bad {
        path: PathBuf,
        moved_to: Option<PathBuf>,
        problem: String,
    },
}

/// The engine's state directory.
#[derive(Debug)]
pub(crate) struct Snapshots {
    dir: PathBuf,
    every: Duration,
    last: Instant,
    writer: Writer,
    /// The `running` file, locked for as long as this engine uses the directory.
    _running: std::fs::File,
}

impl Snapshots {
    /// Opens `dir` (made if missing; it must be writable), and reads how the previous run
    /// ended.
    pub(crate) fn open(dir: &Path, every: Duration) -> Result<(Self, Option<PreviousRun>)> {
        let error = |source: std::io::Error| Error::StateDir {
            path: dir.to_owned(),
            source: Arc::new(source),
        };
        std::fs::create_dir_all(dir).map_err(error)?;
        let dir = dir.canonicalize().map_err(error)?;
        // Writable, and files can be flushed and renamed in it: what every snapshot needs.
        file::write_atomic(&dir.join(".probe"), b"grove").map_err(error)?;
        let _ = std::fs::remove_file(dir.join(".probe"));
        let running = lock_running(&dir).map_err(error)?;
        let previous = previous_run(&dir, running.1);
        let mut running = running.0;
        {
            use std::io::{Seek, Write};
            running.set_len(0).map_err(error)?;
            running.rewind().map_err(error)?;
            write!(running, "{}", std::process::id()).map_err(error)?;
        }
        let marker = CString::new(dir.join("crashed").as_os_str().as_encoded_bytes())
            .map_err(|e| error(std::io::Error::other(e)))?;
        crate::ffi::crash::set_marker(marker);
        Ok((
            Self {
                writer: Writer::start(),
                dir,
                every,
                last: Instant::now(),
                _running: running,
            },
            previous,
        ))
    }

    /// Whether it is time for the periodic snapshots (and, if so, restarts the period).
    pub(crate) fn due(&mut self) -> bool {
        if self.last.elapsed() < self.every {
            return false;
        }
        self.last = Instant::now();
        true
    }

    /// The snapshot of module `module`, if there is one: its state, or a bad file (set
    /// aside).
    pub(crate) fn find(&self, module: &str) -> Option<Found> {
        let path = file::path_for(&self.dir, module);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                return Some(Found::Bad {
                    path,
                    moved_to: None,
                    problem: format!("it cannot be read: {e}"),
                });
            }
        };
        let problem = match file::decode_for(&bytes, module) {
            Ok((header, state)) => {
                return Some(Found::State {
                    state: state.to_vec(),
                    version: header.state_version,
                    age: header.age(),
                    path,
                });
            }
            Err(problem) => problem.to_string(),
        };
        Some(self.set_aside(path, problem))
    }

    /// Moves the file at `path` aside, saying why.
    pub(crate) fn set_aside(&self, path: PathBuf, problem: String) -> Found {
        let moved_to = file::set_aside(&path).ok();
        Found::Bad {
            path,
            moved_to,
            problem,
        }
    }

    /// Takes a snapshot of `module`: its state saved now, written in the background.
    pub(crate) fn take(&self, module: &mut LoadedModule) -> Result<()> {
        let state = module.save_state()?;
        let header = Header {
            module: module.name().to_owned(),
            type_name: module.header().type_name.clone(),
            sdk_version: module.header().sdk_version.clone(),
            schema_fingerprint: module.schema_fingerprint(),
            state_format: grove::abi::STATE_FORMAT_SELF_DESCRIBING,
            generation: module.generation(),
            written_ms: file::now_ms(),
            state_version: module.header().state_version.unwrap_or(0),
        };
        // Framed and checksummed by the writer thread: the frame pays for the state only.
        self.writer.write(
            module.name().to_owned(),
            file::path_for(&self.dir, module.name()),
            header,
            state,
        );
        Ok(())
    }

    /// Snapshots that could not be written since the last call: module and why.
    pub(crate) fn failures(&self) -> Vec<(String, String)> {
        self.writer.failures()
    }

    /// Waits until every snapshot taken so far is on disk.
    pub(crate) fn flush(&self) {
        self.writer.flush();
    }

    /// A clean end: everything written, and the run marked as ended.
    pub(crate) fn close(&self) {
        self.flush();
        let _ = std::fs::remove_file(self.dir.join("running"));
    }

    /// The state directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Opens and locks the directory's `running` file: one engine at a time uses a state
/// directory (two would overwrite each other's snapshots). Also says whether the file was
/// there already (left by a run that did not shut down).
fn lock_running(dir: &Path) -> std::io::Result<(std::fs::File, bool)> {
    let path = dir.join("running");
    let existed = path.exists();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` on a descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let pid = std::fs::read_to_string(&path).unwrap_or_default();
        return Err(std::io::Error::other(format!(
            "another engine (process {}) is using it; give each running host its own state directory",
            pid.trim()
        )));
    }
    Ok((file, existed))
}

/// How the previous run ended, from the markers it left (which are then cleared: the
/// crash record is kept, renamed, for whoever wants to look).
fn previous_run(dir: &Path, running_was_there: bool) -> Option<PreviousRun> {
    let crashed = dir.join("crashed");
    if let Ok(text) = std::fs::read_to_string(&crashed) {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("?")
                .to_owned()
        };
        let previous = PreviousRun::Crashed {
            module: field("module"),
            call: field("call"),
            signal: field("signal"),
        };
        let _ = std::fs::rename(&crashed, dir.join(format!("crashed-{}", file::now_ms())));
        return Some(previous);
    }
    running_was_there.then_some(PreviousRun::Unclean)
}
