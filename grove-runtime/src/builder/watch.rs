//! [`BuildWatch`]: watches a module crate's sources and rebuilds it on a background thread.
//!
//! The watch covers `src/` (recursively), `Cargo.toml`, `build.rs` and `.rs` files next to
//! `Cargo.toml`, and every other source file the last build used, as cargo's dep-info file
//! lists them (path dependencies, other workspace members) with their crates' `Cargo.toml`;
//! editors' temporary files are ignored. A burst of events (an editor saves in several
//! writes) starts one build once [`QUIET`] has passed without another; changes made while a
//! build runs queue exactly one more. A build whose library is byte for byte the one before
//! says so ([`BuildEvent::Finished`]'s `changed`).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::cargo::{Cancel, CrateBuilder};
use super::{BuildError, BuildEvent, dep_info};

/// How long the sources must stay unchanged before a rebuild starts.
pub(crate) const QUIET: Duration = Duration::from_millis(50);

/// A running background rebuild. Dropping it kills a running cargo and stops the thread.
#[derive(Debug)]
pub(crate) struct BuildWatch {
    events: mpsc::Receiver<BuildEvent>,
    signals: mpsc::Sender<Signal>,
    cancel: Arc<Cancel>,
    thread: Option<JoinHandle<()>>,
}

impl BuildWatch {
    /// The next build event, if any. Never blocks.
    pub(crate) fn poll(&self) -> Option<BuildEvent> {
        self.events.try_recv().ok()
    }

    /// Starts watching `builder`'s crate, last built as `artifact`, and rebuilding it in the
    /// background.
    pub(super) fn start(builder: CrateBuilder, artifact: &Path) -> Result<Self, BuildError> {
        let (signals, receiver) = mpsc::channel();
        let events = signals.clone();
        let watch_error = |dir: &Path| {
            let dir = dir.to_owned();
            move |source| BuildError::Watch { dir, source }
        };
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = events.send(Signal::Event(event));
        })
        .map_err(watch_error(&builder.dir))?;
        watcher
            .watch(&builder.dir, RecursiveMode::NonRecursive)
            .map_err(watch_error(&builder.dir))?;
        let src = builder.dir.join("src");
        if src.is_dir() {
            watcher
                .watch(&src, RecursiveMode::Recursive)
                .map_err(watch_error(&src))?;
        }
        let (sender, events) = mpsc::channel();
        let cancel = Arc::new(Cancel::default());
        let dir = builder.dir.clone();
        let mut rebuilder = Rebuilder {
            builder,
            signals: receiver,
            events: sender,
            cancel: Arc::clone(&cancel),
            watcher,
            sources: BTreeSet::new(),
            watched: BTreeSet::new(),
            last_hash: hash_file(artifact),
        };
        rebuilder.watch_sources_of(artifact);
        let thread = std::thread::Builder::new()
            .name("grove-crate-builder".into())
            .spawn(move || rebuilder.run())
            .map_err(|e| BuildError::Watch {
                dir: dir.clone(),
                source: notify::Error::io(e),
            })?;
        tracing::debug!(dir = %dir.display(), "watching crate sources");
        Ok(BuildWatch {
            events,
            signals,
            cancel,
            thread: Some(thread),
        })
    }
}

impl Drop for BuildWatch {
    fn drop(&mut self) {
        self.cancel.stop();
        let _ = self.signals.send(Signal::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

enum Signal {
    Event(notify::Result<notify::Event>),
    Stop,
}

/// The background thread: waits for source changes and rebuilds.
struct Rebuilder {
    builder: CrateBuilder,
    signals: mpsc::Receiver<Signal>,
    events: mpsc::Sender<BuildEvent>,
    cancel: Arc<Cancel>,
    watcher: RecommendedWatcher,
    /// Source files outside the crate's own that the last build used, and their crates'
    /// `Cargo.toml`.
    sources: BTreeSet<PathBuf>,
    /// The directories watched for them.
    watched: BTreeSet<PathBuf>,
    /// The last library built, hashed, to tell a build that changed nothing.
    last_hash: Option<u64>,
}

/// The hash of the file at `path`; `None` if it cannot be read.
fn hash_file(path: &Path) -> Option<u64> {
    std::fs::read(path)
        .ok()
        .map(|bytes| xxhash_rust::xxh3::xxh3_64(&bytes))
}

/// Whether the thread goes on.
enum Next {
    Continue,
    Stop,
}

impl Rebuilder {
    fn run(&mut self) {
        loop {
            // Wait for a change.
            let changed = match self.signals.recv() {
                Ok(Signal::Event(event)) => self.is_source_change(&event),
                Ok(Signal::Stop) | Err(_) => return,
            };
            if !changed {
                continue;
            }
            // Build until no change arrived during the last build.
            loop {
                if let Next::Stop = self.wait_for_quiet() {
                    return;
                }
                let _ = self.events.send(BuildEvent::Started);
                let started = Instant::now();
                let result = self.builder.run(Some(&self.cancel), None);
                if self.cancel.stopped() {
                    return;
                }
                let event = match result {
                    Ok(artifact) => {
                        let took = started.elapsed();
                        let hash = hash_file(&artifact);
                        let changed = hash.is_none() || hash != self.last_hash;
                        self.last_hash = hash;
                        self.watch_sources_of(&artifact);
                        BuildEvent::Finished {
                            artifact,
                            took,
                            changed,
                        }
                    }
                    Err(error) => BuildEvent::Failed { error },
                };
                let _ = self.events.send(event);
                let mut changed = false;
                loop {
                    match self.signals.try_recv() {
                        Ok(Signal::Event(event)) => changed |= self.is_source_change(&event),
                        Ok(Signal::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                        Err(mpsc::TryRecvError::Empty) => break,
                    }
                }
                if !changed {
                    break;
                }
            }
        }
    }

    /// Adds the source files the build of `artifact` used to the watch: their directories,
    /// and the `Cargo.toml` of the crate each belongs to. Files of the crate's own
    /// directory are watched already.
    fn watch_sources_of(&mut self, artifact: &Path) {
        let used = match dep_info::sources(artifact, &self.builder.dir) {
            Ok(used) => used,
            Err(e) => {
                tracing::debug!(artifact = %artifact.display(), error = %e, "no dep-info file: watching the crate's own sources only");
                return;
            }
        };
        let mut manifests = BTreeSet::new();
        for file in used {
            if file.starts_with(&self.builder.dir) {
                continue;
            }
            if let Some(manifest) = file
                .ancestors()
                .skip(1)
                .map(|dir| dir.join("Cargo.toml"))
                .find(|manifest| manifest.is_file())
            {
                manifests.insert(manifest);
            }
            self.sources.insert(file);
        }
        self.sources.extend(manifests);
        let dirs: BTreeSet<PathBuf> = self
            .sources
            .iter()
            .filter_map(|file| file.parent().map(Path::to_owned))
            .collect();
        for dir in dirs.difference(&self.watched.clone()) {
            match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir.clone());
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch a directory of the crate's dependencies; edits there do not rebuild");
                }
            }
        }
        tracing::debug!(dir = %self.builder.dir.display(), files = self.sources.len(), dirs = self.watched.len(), "watching the sources the build used");
    }

    /// Waits until no source has changed for [`QUIET`].
    fn wait_for_quiet(&mut self) -> Next {
        let mut quiet_from = Instant::now();
        loop {
            let left = QUIET.saturating_sub(quiet_from.elapsed());
            match self.signals.recv_timeout(left) {
                Ok(Signal::Event(event)) => {
                    if self.is_source_change(&event) {
                        quiet_from = Instant::now();
                    }
                }
                Ok(Signal::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Next::Stop;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return Next::Continue,
            }
        }
    }

    /// Whether `event` changed a source of the crate. Re-watches `src/` if it was
    /// recreated.
    fn is_source_change(&mut self, event: &notify::Result<notify::Event>) -> bool {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(dir = %self.builder.dir.display(), error = %e, "crate watch error");
                return false;
            }
        };
        if event.need_rescan() {
            return true;
        }
        let src = self.builder.dir.join("src");
        let src_recreated = matches!(
            event.kind,
            EventKind::Create(CreateKind::Folder | CreateKind::Any)
        ) && event.paths.contains(&src);
        if src_recreated && let Err(e) = self.watcher.watch(&src, RecursiveMode::Recursive) {
            tracing::warn!(dir = %src.display(), error = %e, "cannot watch recreated src/");
        }
        let writes = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            EventKind::Create(_)
            | EventKind::Modify(_)
            | EventKind::Remove(_)
            | EventKind::Any
            | EventKind::Other => true,
        };
        writes
            && event.paths.iter().any(|path| {
                is_source(&self.builder.dir, path)
                    || (self.sources.contains(path)
                        && !path.file_name().is_some_and(is_editor_temp))
            })
    }
}

/// Whether `path` is one of the crate's sources, for the watch.
fn is_source(dir: &Path, path: &Path) -> bool {
    let Some(name) = path.file_name() else {
        return false;
    };
    if is_editor_temp(name) {
        return false;
    }
    if path.starts_with(dir.join("src")) {
        return true;
    }
    if path.parent() != Some(dir) {
        return false;
    }
    name == "Cargo.toml"
        || name == "build.rs"
        || name == "src"
        || Path::new(name).extension() == Some(OsStr::new("rs"))
}

/// Editors' swap, backup and lock files.
fn is_editor_temp(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name == "4913"
        || name.ends_with('~')
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#'))
        || [".swp", ".swo", ".swx", "___jb_tmp___", "___jb_old___"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::PathBuf;

    use crate::builder::test_crate::{TestCrate, has_mark, lib_rs};
    use crate::watcher::LibraryWatcher;

    /// The next build event, waiting up to a minute (a build on a busy machine is slow).
    fn next_event(watch: &BuildWatch) -> BuildEvent {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(event) = watch.poll() {
                return event;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no build event within a minute");
    }

    fn expect_finished(watch: &BuildWatch) -> PathBuf {
        match next_event(watch) {
            BuildEvent::Finished { artifact, .. } => artifact,
            other => panic!("expected Finished, got {other:?}"),
        }
    }

    fn expect_started(watch: &BuildWatch) {
        match next_event(watch) {
            BuildEvent::Started => {}
            other => panic!("expected Started, got {other:?}"),
        }
    }

    #[test]
    fn watch_rebuilds_on_edits_and_reports_compile_errors() {
        let crate_ = TestCrate::new(r#"["cdylib", "rlib"]"#, &lib_rs(1));
        let builder = crate_.builder();
        let first = builder.build().unwrap();
        let loaded = xxhash_rust::xxh3::xxh3_64(&std::fs::read(&first).unwrap());
        let library = LibraryWatcher::new(&first, loaded).unwrap();
        let watch = builder.watch(&first).unwrap();

        // An edit: rebuilt, and the library watcher sees the new file once.
        crate_.write_lib(&lib_rs(2));
        expect_started(&watch);
        let artifact = expect_finished(&watch);
        assert_eq!(artifact, first);
        assert!(has_mark(&artifact, 2));
        let deadline = Instant::now() + Duration::from_secs(5);
        let new = loop {
            if let Some(new) = library.poll() {
                break new;
            }
            assert!(
                Instant::now() < deadline,
                "the rebuilt library was not reported"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(new.snapshot.bytes, std::fs::read(&artifact).unwrap());

        // A syntax error: a failed build that shows rustc's message.
        crate_.write_lib("pub extern \"C\" fn f() -> u32 { 1 +* }\n");
        expect_started(&watch);
        let error = match next_event(&watch) {
            BuildEvent::Failed { error } => error,
            other => panic!("expected Failed, got {other:?}"),
        };
        let BuildError::Compile { krate, errors, .. } = &error else {
            panic!("expected a compile error, got {error:?}");
        };
        assert_eq!(krate, "grove-builder-probe");
        assert!(errors[0].contains("expected expression"), "{errors:?}");
        let message = error.to_string();
        assert!(message.contains("grove-builder-probe"), "{message}");
        assert!(message.contains("expected expression"), "{message}");
        assert!(message.contains("src/lib.rs"), "{message}");
        assert!(error.rendered().unwrap().contains("expected expression"));

        // Edits while a build runs queue exactly one more build, of the last edit.
        crate_.write_lib(&lib_rs(3));
        expect_started(&watch);
        for mark in 4..=8 {
            crate_.write_lib(&lib_rs(mark));
        }
        // Built from edit 3 or a later one, depending on when rustc read the file.
        expect_finished(&watch);
        expect_started(&watch);
        let artifact = expect_finished(&watch);
        assert!(has_mark(&artifact, 8));
        let quiet_until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < quiet_until {
            if let Some(event) = watch.poll() {
                panic!("unexpected build event: {event:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }

        // Dropping the watch during a build stops it.
        crate_.write_lib(&lib_rs(9));
        expect_started(&watch);
        drop(watch);
    }

    #[test]
    fn sources_and_editor_files_are_told_apart() {
        let dir = Path::new("/crate");
        assert!(is_source(dir, Path::new("/crate/src/lib.rs")));
        assert!(is_source(dir, Path::new("/crate/src/deep/mod.rs")));
        assert!(is_source(dir, Path::new("/crate/Cargo.toml")));
        assert!(is_source(dir, Path::new("/crate/build.rs")));
        assert!(!is_source(dir, Path::new("/crate/Cargo.lock")));
        assert!(!is_source(dir, Path::new("/crate/target/debug/libx.so")));
        assert!(!is_source(dir, Path::new("/crate/target")));
        for temp in ["4913", "lib.rs~", ".lib.rs.swp", ".#lib.rs", "#lib.rs#"] {
            assert!(
                !is_source(dir, &Path::new("/crate/src").join(temp)),
                "{temp}"
            );
        }
    }
}
