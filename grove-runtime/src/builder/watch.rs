//! [`Builds`]: the engine's one builder thread, which watches every watched module crate's
//! sources (through the engine's [`WatchHub`]) and rebuilds them with cargo, one at a time;
//! [`BuildWatch`]: one crate's place in it.
//!
//! The watch covers `src/` (recursively), `Cargo.toml`, `build.rs` and `.rs` files next to
//! `Cargo.toml`, and every other source file the last build used, as cargo's dep-info file
//! lists them (path dependencies, other workspace members) with their crates' `Cargo.toml`;
//! editors' temporary files are ignored. A burst of events (an editor saves in several
//! writes) queues one build once [`QUIET`] has passed without another ([`SAVED_QUIET`]
//! after a finished save); a crate changed
//! again while it waits in the queue is still built once, and changes made while it builds
//! queue exactly one more build. Crates are built in the order their changes settled. A
//! build whose library is byte for byte the one before says so
//! ([`BuildEvent::Finished`]'s `changed`).

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::RecursiveMode;
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind};

use super::cargo::{Cancel, CrateBuilder};
use super::{BuildError, BuildEvent, dep_info};
use crate::watch::{Subscription, WatchHub};

/// How long the sources must stay unchanged before a rebuild starts.
pub(crate) const QUIET: Duration = Duration::from_millis(50);

/// As [`QUIET`], when the last change was a finished save (a file closed after writing, or
/// renamed into place): only the next files of a save of several are waited for, which an
/// editor writes one right after the other. A build started early is followed by exactly
/// one more if a file changes while it runs.
pub(crate) const SAVED_QUIET: Duration = Duration::from_millis(10);

/// The engine's builder thread. Dropping it kills a running cargo and stops the thread.
#[derive(Debug)]
pub(crate) struct Builds {
    hub: WatchHub,
    sender: mpsc::Sender<Signal>,
    next_id: AtomicU64,
    thread: Option<JoinHandle<()>>,
    /// Every crate's cancel, so that dropping the service stops a running build.
    cancels: std::sync::Mutex<Vec<std::sync::Weak<Cancel>>>,
}

/// One watched crate. Dropping it kills its running cargo and takes it off the queue.
#[derive(Debug)]
pub(crate) struct BuildWatch {
    id: u64,
    events: mpsc::Receiver<BuildEvent>,
    signals: mpsc::Sender<Signal>,
    cancel: Arc<Cancel>,
}

impl BuildWatch {
    /// The next build event, if any. Never blocks.
    pub(crate) fn poll(&self) -> Option<BuildEvent> {
        self.events.try_recv().ok()
    }
}

impl Drop for BuildWatch {
    fn drop(&mut self) {
        self.cancel.stop();
        let _ = self.signals.send(Signal::Remove(self.id));
    }
}

enum Signal {
    Add(u64, Box<Crate>),
    Remove(u64),
    Event(u64, notify::Event),
    Stop,
}

impl Builds {
    /// Starts the builder thread; crates' sources are watched through `hub`.
    pub(crate) fn start(hub: WatchHub) -> Result<Self, BuildError> {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("grove-crate-builder".into())
            .spawn(move || Rebuilder::default().run(&receiver))
            .map_err(|e| BuildError::Thread { source: e })?;
        Ok(Self {
            hub,
            sender,
            next_id: AtomicU64::new(1),
            thread: Some(thread),
            cancels: Default::default(),
        })
    }

    /// Starts watching `builder`'s crate, last built as `artifact`, and rebuilding it in the
    /// background.
    pub(crate) fn watch(
        &self,
        builder: CrateBuilder,
        artifact: &Path,
    ) -> Result<BuildWatch, BuildError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let subscribe = |dir: &Path, mode| subscribe(&self.hub, &self.sender, id, dir, mode);
        let mut subscriptions = vec![subscribe(&builder.dir, RecursiveMode::NonRecursive)?];
        let src = builder.dir.join("src");
        if src.is_dir() {
            subscriptions.push(subscribe(&src, RecursiveMode::Recursive)?);
        }
        let (sender, events) = mpsc::channel();
        let cancel = Arc::new(Cancel::default());
        let dir = builder.dir.clone();
        let mut watched = Crate {
            builder,
            events: sender,
            cancel: Arc::clone(&cancel),
            hub: self.hub.clone(),
            signals: self.sender.clone(),
            id,
            own: subscriptions,
            sources: BTreeSet::new(),
            watched: HashMap::new(),
            last_hash: hash_file(artifact),
            changed: None,
        };
        watched.watch_sources_of(artifact);
        let _ = self.sender.send(Signal::Add(id, Box::new(watched)));
        let mut cancels = self.cancels.lock().unwrap_or_else(|p| p.into_inner());
        cancels.retain(|c| c.strong_count() > 0);
        cancels.push(Arc::downgrade(&cancel));
        tracing::debug!(dir = %dir.display(), "watching crate sources");
        Ok(BuildWatch {
            id,
            events,
            signals: self.sender.clone(),
            cancel,
        })
    }
}

impl Drop for Builds {
    fn drop(&mut self) {
        for cancel in self
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(std::sync::Weak::upgrade)
        {
            cancel.stop();
        }
        let _ = self.sender.send(Signal::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Subscribes crate `id` to the events of `dir`, sent to the builder thread.
fn subscribe(
    hub: &WatchHub,
    signals: &mpsc::Sender<Signal>,
    id: u64,
    dir: &Path,
    mode: RecursiveMode,
) -> Result<Subscription, BuildError> {
    let signals = signals.clone();
    hub.subscribe(
        dir,
        mode,
        Vec::new(),
        Arc::new(move |event: &notify::Event| {
            let _ = signals.send(Signal::Event(id, event.clone()));
        }),
    )
    .map_err(|source| BuildError::Watch {
        dir: dir.to_owned(),
        source,
    })
}

/// One crate, as the builder thread keeps it.
struct Crate {
    builder: CrateBuilder,
    events: mpsc::Sender<BuildEvent>,
    cancel: Arc<Cancel>,
    hub: WatchHub,
    signals: mpsc::Sender<Signal>,
    id: u64,
    /// The crate's own directory and `src/`.
    own: Vec<Subscription>,
    /// Source files outside the crate's own that the last build used, and their crates'
    /// `Cargo.toml`.
    sources: BTreeSet<PathBuf>,
    /// The directories watched for them.
    watched: HashMap<PathBuf, Subscription>,
    /// The last library built, hashed, to tell a build that changed nothing.
    last_hash: Option<u64>,
    /// When a source last changed, while a build of the change is due, and how long the
    /// sources must stay unchanged from then.
    changed: Option<(Instant, Duration)>,
}

/// The hash of what the library at `path` loads, as the watcher hashes it; `None` if it
/// cannot be read.
fn hash_file(path: &Path) -> Option<u64> {
    crate::ffi::elf::file_hash(path)
}

/// The builder thread.
#[derive(Default)]
struct Rebuilder {
    crates: HashMap<u64, Crate>,
    /// Crates whose changes settled, in the order they did: built first come, first served.
    queue: Vec<u64>,
}

impl Rebuilder {
    fn run(&mut self, signals: &mpsc::Receiver<Signal>) {
        loop {
            let quiet_ends = self
                .crates
                .values()
                .filter_map(|c| c.changed.map(|(at, quiet)| at + quiet))
                .min();
            let first = if !self.queue.is_empty() {
                signals.try_recv().ok()
            } else {
                match quiet_ends {
                    Some(at) => {
                        match signals.recv_timeout(at.saturating_duration_since(Instant::now())) {
                            Ok(signal) => Some(signal),
                            Err(mpsc::RecvTimeoutError::Timeout) => None,
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    None => match signals.recv() {
                        Ok(signal) => Some(signal),
                        Err(mpsc::RecvError) => return,
                    },
                }
            };
            let mut next = first;
            while let Some(signal) = next {
                match signal {
                    Signal::Stop => return,
                    Signal::Add(id, watched) => {
                        self.crates.insert(id, *watched);
                    }
                    Signal::Remove(id) => {
                        self.crates.remove(&id);
                        self.queue.retain(|queued| *queued != id);
                    }
                    Signal::Event(id, event) => {
                        if let Some(watched) = self.crates.get_mut(&id)
                            && watched.is_source_change(&event)
                        {
                            // Queued and changed again: still one build, once quiet again.
                            self.queue.retain(|queued| *queued != id);
                            let quiet = if is_finished_save(&event) {
                                SAVED_QUIET
                            } else {
                                QUIET
                            };
                            watched.changed = Some((Instant::now(), quiet));
                        }
                    }
                }
                next = signals.try_recv().ok();
            }
            let now = Instant::now();
            let mut settled: Vec<(Instant, u64)> = self
                .crates
                .iter_mut()
                .filter_map(|(id, c)| match c.changed {
                    Some((at, quiet)) if now.duration_since(at) >= quiet => {
                        c.changed = None;
                        Some((at, *id))
                    }
                    _ => None,
                })
                .collect();
            settled.sort();
            self.queue.extend(settled.into_iter().map(|(_, id)| id));
            if self.queue.is_empty() {
                continue;
            }
            let id = self.queue.remove(0);
            if let Some(watched) = self.crates.get_mut(&id) {
                watched.build();
            }
        }
    }
}

impl Crate {
    /// Builds the crate and says how it went.
    fn build(&mut self) {
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
        for dir in dirs {
            if self.watched.contains_key(&dir) {
                continue;
            }
            match subscribe(
                &self.hub,
                &self.signals,
                self.id,
                &dir,
                RecursiveMode::NonRecursive,
            ) {
                Ok(subscription) => {
                    self.watched.insert(dir, subscription);
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch a directory of the crate's dependencies; edits there do not rebuild");
                }
            }
        }
        tracing::debug!(dir = %self.builder.dir.display(), files = self.sources.len(), dirs = self.watched.len(), "watching the sources the build used");
    }

    /// Whether `event` changed a source of the crate. Re-watches `src/` if it was
    /// recreated.
    fn is_source_change(&mut self, event: &notify::Event) -> bool {
        if event.need_rescan() {
            return true;
        }
        let src = self.builder.dir.join("src");
        let src_recreated = matches!(
            event.kind,
            EventKind::Create(CreateKind::Folder | CreateKind::Any)
        ) && event.paths.contains(&src);
        if src_recreated {
            self.own.retain(|s| s.dir() != src);
            match subscribe(
                &self.hub,
                &self.signals,
                self.id,
                &src,
                RecursiveMode::Recursive,
            ) {
                Ok(subscription) => self.own.push(subscription),
                Err(e) => {
                    tracing::warn!(dir = %src.display(), error = %e, "cannot watch recreated src/")
                }
            }
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

/// Whether `event` ends the save of a file cargo reads (a `.rs` file or a `Cargo.toml`):
/// closed after writing, or renamed into place. An editor's temporary file closed before
/// it is renamed over the source is not the end of the save.
fn is_finished_save(event: &notify::Event) -> bool {
    use notify::event::{ModifyKind, RenameMode};
    let finished = matches!(
        event.kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    );
    // For a rename of both ends, the last path is where the file now is.
    let path = match event.kind {
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => event.paths.last(),
        _ => event.paths.first(),
    };
    finished
        && path.is_some_and(|path| {
            path.extension() == Some(OsStr::new("rs"))
                || path.file_name() == Some(OsStr::new("Cargo.toml"))
        })
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
    use crate::watch::{LibraryChecks, LibraryWatcher};

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
    fn a_finished_save_of_a_source_is_told_from_the_writes_before_it() {
        use notify::event::{DataChange, ModifyKind, RenameMode};
        let event = |kind, paths: &[&str]| notify::Event {
            kind,
            paths: paths.iter().map(PathBuf::from).collect(),
            attrs: Default::default(),
        };
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert!(is_finished_save(&event(closed, &["/c/src/lib.rs"])));
        assert!(is_finished_save(&event(closed, &["/c/Cargo.toml"])));
        assert!(is_finished_save(&event(
            renamed,
            &["/c/src/.lib.rs.tmp", "/c/src/lib.rs"]
        )));
        // Still being written, or a temporary file not yet in place.
        assert!(!is_finished_save(&event(written, &["/c/src/lib.rs"])));
        assert!(!is_finished_save(&event(closed, &["/c/src/.lib.rs.tmp"])));
        assert!(!is_finished_save(&event(
            renamed,
            &["/c/src/lib.rs", "/c/src/lib.rs.bak"]
        )));
    }

    #[test]
    fn watch_rebuilds_on_edits_and_reports_compile_errors() {
        let crate_ = TestCrate::new(r#"["cdylib", "rlib"]"#, &lib_rs(1));
        let builder = crate_.builder();
        let first = builder.build().unwrap();
        let loaded = crate::ffi::elf::file_hash(&first).unwrap();
        let hub = WatchHub::default();
        let staging = Arc::new(crate::ffi::staging::Staging::new().unwrap());
        let checks = LibraryChecks::start(hub.clone()).unwrap();
        let library = LibraryWatcher::new(&first, loaded, &staging, &checks).unwrap();
        let builds = Builds::start(hub.clone()).unwrap();
        let watch = builds.watch(builder, &first).unwrap();

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
        assert_eq!(
            std::fs::read(new.snapshot.staged.path()).unwrap(),
            std::fs::read(&artifact).unwrap()
        );

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
