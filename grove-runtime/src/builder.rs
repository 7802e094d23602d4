//! [`CrateBuilder`]: builds a module crate with cargo, and rebuilds it in the background
//! when its sources change, so that frames never wait for rustc.
//!
//! cargo runs with `--message-format=json`: the library's path comes from the
//! `compiler-artifact` message of the crate's `cdylib` target, and the compiler's rendered
//! diagnostics are collected into [`BuildError::Compile`].
//!
//! The watch covers `src/` (recursively), `Cargo.toml`, `build.rs` and `.rs` files next to
//! `Cargo.toml`; editors' temporary files are ignored. A burst of events (an editor saves in
//! several writes) starts one build once [`QUIET`] has passed without another; changes made
//! while a build runs queue exactly one more.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cargo_output::{cargo_error, parse_manifest, read_messages, same_file};
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// How long the sources must stay unchanged before a rebuild starts.
pub(crate) const QUIET: Duration = Duration::from_millis(50);

/// How to build a module crate.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// `--release`.
    pub release: bool,
    /// `--target-dir` (relative to the current directory); cargo's default (or
    /// `CARGO_TARGET_DIR`) when `None`.
    pub target_dir: Option<PathBuf>,
    /// `--features`.
    pub features: Vec<String>,
}

/// What a background build reports, in order: `Started`, then `Finished` or `Failed`.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildEvent {
    /// A source changed and a build started.
    Started,
    /// The build succeeded; the library is at `artifact`.
    Finished {
        /// The crate's cdylib.
        artifact: PathBuf,
        /// How long cargo ran.
        took: Duration,
    },
    /// The build failed. The library from the last successful build is still in place.
    Failed {
        /// Why.
        error: BuildError,
    },
}

/// A module crate that could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The directory is not a crate that can be built.
    #[error("{dir} is not a module crate: {reason}")]
    NotACrate {
        /// The directory given.
        dir: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },

    /// cargo could not be started.
    #[error(
        "cannot start `{cargo}` to build {dir}: {source}; is cargo on PATH? (or set CARGO to \
         its path)",
        cargo = .cargo.to_string_lossy()
    )]
    CargoUnavailable {
        /// The program run: `$CARGO`, or `cargo`.
        cargo: OsString,
        /// The crate's directory.
        dir: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },

    /// cargo's output could not be read.
    #[error("lost cargo's output while building crate `{krate}`: {source}")]
    CargoOutput {
        /// The crate's package name.
        krate: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },

    /// The crate does not compile.
    #[error("crate `{krate}` in {dir} failed to build:{}", first_error(.errors))]
    Compile {
        /// The crate's package name.
        krate: String,
        /// The crate's directory.
        dir: PathBuf,
        /// The errors as rustc renders them (or cargo's own error, when it failed before
        /// compiling), in order.
        errors: Vec<String>,
        /// The warnings as rustc renders them, in order.
        warnings: Vec<String>,
    },

    /// The crate built, but produced no shared library to load.
    #[error(
        "crate `{krate}` builds no cdylib, so there is no library to load: add \
         `crate-type = [\"cdylib\", \"rlib\"]` under [lib] in {manifest}"
    )]
    NoCdylib {
        /// The crate's package name.
        krate: String,
        /// Its Cargo.toml.
        manifest: PathBuf,
    },

    /// The crate's sources cannot be watched.
    #[error(
        "cannot watch {dir} for changes: {source}; if the limit on inotify watches is \
         reached, raise fs.inotify.max_user_watches"
    )]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// What notify said.
        #[source]
        source: notify::Error,
    },
}

impl BuildError {
    /// Every diagnostic of a failed compile, rendered as rustc prints them: warnings first,
    /// then errors, so that the errors end up at the bottom of a terminal.
    pub fn rendered(&self) -> Option<String> {
        match self {
            BuildError::Compile {
                errors, warnings, ..
            } => Some(
                warnings
                    .iter()
                    .chain(errors)
                    .map(|d| d.trim_end())
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            ),
            _ => None,
        }
    }
}

fn first_error(errors: &[String]) -> String {
    let Some(first) = errors.first() else {
        return " cargo reported no error message".into();
    };
    match errors.len() {
        1 => format!("\n{}", first.trim_end()),
        n => format!("\n{}\n({} more errors)", first.trim_end(), n - 1),
    }
}

/// Builds one module crate with cargo.
#[derive(Clone, Debug)]
pub(crate) struct CrateBuilder {
    /// The crate's directory, canonical.
    dir: PathBuf,
    /// Its Cargo.toml.
    manifest: PathBuf,
    /// `package.name`.
    package: String,
    /// Whether its Cargo.toml is also a workspace root: then `-p` selects the package.
    workspace_root: bool,
    options: BuildOptions,
    /// `$CARGO`, or `cargo`.
    cargo: OsString,
}

impl CrateBuilder {
    /// A builder for the crate in `crate_dir` (the directory of its Cargo.toml).
    pub(crate) fn new(crate_dir: &Path, options: BuildOptions) -> Result<Self, BuildError> {
        let not_a_crate = |reason: String| BuildError::NotACrate {
            dir: crate_dir.to_owned(),
            reason,
        };
        let dir = crate_dir
            .canonicalize()
            .map_err(|e| not_a_crate(format!("the directory cannot be opened ({e})")))?;
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            return Err(not_a_crate(
                "it has no Cargo.toml: point at the module crate's directory".into(),
            ));
        }
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| not_a_crate(format!("its Cargo.toml cannot be read ({e})")))?;
        let parsed = parse_manifest(&text);
        let package = parsed.package.ok_or_else(|| {
            not_a_crate(
                "its Cargo.toml has no [package] name (a workspace root?): point at the \
                 module crate's own directory"
                    .into(),
            )
        })?;
        let mut options = options;
        if let Some(target_dir) = &mut options.target_dir {
            // cargo runs in the crate's directory; the caller meant its own.
            *target_dir = std::path::absolute(&*target_dir).map_err(|e| {
                not_a_crate(format!(
                    "the target directory {} cannot be resolved ({e})",
                    target_dir.display()
                ))
            })?;
        }
        Ok(Self {
            dir,
            manifest,
            package,
            workspace_root: parsed.workspace,
            options,
            cargo: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        })
    }

    /// Builds the crate, blocking, and returns its cdylib's path.
    pub(crate) fn build(&self) -> Result<PathBuf, BuildError> {
        self.run(None)
    }

    /// Starts watching the crate's sources and rebuilding it in the background.
    pub(crate) fn watch(self) -> Result<BuildWatch, BuildError> {
        let (signals, receiver) = mpsc::channel();
        let events = signals.clone();
        let watch_error = |dir: &Path| {
            let dir = dir.to_owned();
            move |source| BuildError::Watch { dir, source }
        };
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = events.send(Signal::Event(event));
        })
        .map_err(watch_error(&self.dir))?;
        watcher
            .watch(&self.dir, RecursiveMode::NonRecursive)
            .map_err(watch_error(&self.dir))?;
        let src = self.dir.join("src");
        if src.is_dir() {
            watcher
                .watch(&src, RecursiveMode::Recursive)
                .map_err(watch_error(&src))?;
        }
        let (sender, events) = mpsc::channel();
        let cancel = Arc::new(Cancel::default());
        let dir = self.dir.clone();
        let mut rebuilder = Rebuilder {
            builder: self,
            signals: receiver,
            events: sender,
            cancel: Arc::clone(&cancel),
            watcher,
        };
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

    fn command(&self) -> Command {
        let mut command = Command::new(&self.cargo);
        command
            .current_dir(&self.dir)
            .args([
                "build",
                "--message-format=json",
                "--color=never",
                "--manifest-path",
            ])
            .arg(&self.manifest);
        if self.workspace_root {
            command.args(["-p", &self.package]);
        }
        if self.options.release {
            command.arg("--release");
        }
        if let Some(target_dir) = &self.options.target_dir {
            command.arg("--target-dir").arg(target_dir);
        }
        if !self.options.features.is_empty() {
            command
                .arg("--features")
                .arg(self.options.features.join(","));
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs cargo. With `cancel`, the running cargo can be killed from another thread.
    fn run(&self, cancel: Option<&Cancel>) -> Result<PathBuf, BuildError> {
        let started = Instant::now();
        tracing::debug!(krate = %self.package, dir = %self.dir.display(), "building crate");
        let mut child = self
            .command()
            .spawn()
            .map_err(|source| BuildError::CargoUnavailable {
                cargo: self.cargo.clone(),
                dir: self.dir.clone(),
                source,
            })?;
        let lost_output = |source| BuildError::CargoOutput {
            krate: self.package.clone(),
            source,
        };
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(lost_output(io::Error::other("cargo's output is not piped")));
        };
        let mut child = Some(child);
        if let Some(cancel) = cancel {
            // Under the lock: a `stop` either sees the child or was seen here.
            let mut running = cancel.child.lock().unwrap_or_else(PoisonError::into_inner);
            if cancel.stopped.load(Ordering::SeqCst)
                && let Some(child) = child.as_mut()
            {
                let _ = child.kill();
            }
            *running = child.take();
        }
        let (output, stderr_text) = std::thread::scope(|scope| {
            let stderr_reader = std::thread::Builder::new()
                .name("grove-cargo-stderr".into())
                .spawn_scoped(scope, move || {
                    let mut text = String::new();
                    stderr.read_to_string(&mut text).map(|_| text)
                });
            let output = read_messages(stdout);
            let stderr_text = match stderr_reader {
                Ok(reader) => reader.join().unwrap_or_else(|_| Ok(String::new())),
                Err(e) => Err(e),
            };
            (output, stderr_text)
        });
        let mut child = match cancel {
            Some(cancel) => cancel
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
            None => child,
        };
        let status = child
            .as_mut()
            .map(Child::wait)
            .transpose()
            .map_err(lost_output)?;
        let output = output.map_err(lost_output)?;
        let success = status.is_some_and(|s| s.success());
        if !success {
            let mut errors = output.errors;
            if errors.is_empty() {
                errors.push(cargo_error(&stderr_text.unwrap_or_default(), status));
            }
            tracing::debug!(krate = %self.package, errors = errors.len(), "build failed");
            return Err(BuildError::Compile {
                krate: self.package.clone(),
                dir: self.dir.clone(),
                errors,
                warnings: output.warnings,
            });
        }
        for warning in &output.warnings {
            tracing::trace!(krate = %self.package, warning = %warning.trim_end(), "rustc warning");
        }
        let artifact = output
            .cdylibs
            .into_iter()
            .find(|(manifest, _)| same_file(manifest, &self.manifest))
            .map(|(_, artifact)| artifact)
            .ok_or_else(|| BuildError::NoCdylib {
                krate: self.package.clone(),
                manifest: self.manifest.clone(),
            })?;
        tracing::debug!(
            krate = %self.package,
            artifact = %artifact.display(),
            warnings = output.warnings.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "crate built"
        );
        Ok(artifact)
    }
}

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

/// Lets [`BuildWatch`]'s drop kill the cargo its thread is waiting on.
#[derive(Debug, Default)]
struct Cancel {
    stopped: AtomicBool,
    child: Mutex<Option<Child>>,
}

impl Cancel {
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(child) = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            let _ = child.kill();
        }
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
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
                let result = self.builder.run(Some(&self.cancel));
                if self.cancel.stopped() {
                    return;
                }
                let event = match result {
                    Ok(artifact) => BuildEvent::Finished {
                        artifact,
                        took: started.elapsed(),
                    },
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
            && event
                .paths
                .iter()
                .any(|path| is_source(&self.builder.dir, path))
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

    use crate::watcher::LibraryWatcher;

    /// A throwaway module crate with no dependencies and its own target directory.
    struct TestCrate {
        dir: tempfile::TempDir,
        target: tempfile::TempDir,
    }

    impl TestCrate {
        fn new(crate_types: &str, lib_rs: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let target = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("Cargo.toml"),
                format!(
                    "[package]\nname = \"grove-builder-probe\"\nversion = \"0.1.0\"\n\
                     edition = \"2021\"\n\n[lib]\ncrate-type = {crate_types}\n\n[workspace]\n"
                ),
            )
            .unwrap();
            std::fs::create_dir(dir.path().join("src")).unwrap();
            let crate_ = Self { dir, target };
            crate_.write_lib(lib_rs);
            crate_
        }

        fn write_lib(&self, lib_rs: &str) {
            std::fs::write(self.dir.path().join("src/lib.rs"), lib_rs).unwrap();
        }

        fn builder(&self) -> CrateBuilder {
            let options = BuildOptions {
                target_dir: Some(self.target.path().to_owned()),
                ..BuildOptions::default()
            };
            CrateBuilder::new(self.dir.path(), options).unwrap()
        }
    }

    /// A library exporting `f` and a marker string to find in the built file.
    fn lib_rs(mark: u32) -> String {
        format!(
            "#[no_mangle]\npub extern \"C\" fn f() -> u32 {{ {mark} }}\n\
             #[no_mangle]\npub static MARK: [u8; 16] = *b\"grove-mark-{mark:05}\";\n"
        )
    }

    fn has_mark(artifact: &Path, mark: u32) -> bool {
        let bytes = std::fs::read(artifact).unwrap();
        let needle = format!("grove-mark-{mark:05}");
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

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
    fn build_returns_the_cdylib() {
        let crate_ = TestCrate::new(r#"["cdylib"]"#, &lib_rs(1));
        let artifact = crate_.builder().build().unwrap();
        assert!(
            artifact.starts_with(crate_.target.path()),
            "{}",
            artifact.display()
        );
        assert_eq!(
            artifact.file_name().unwrap(),
            "libgrove_builder_probe.so",
            "{}",
            artifact.display()
        );
        let bytes = std::fs::read(&artifact).unwrap();
        crate::elf::check_complete(&bytes).unwrap();
        assert!(has_mark(&artifact, 1));
    }

    #[test]
    fn watch_rebuilds_on_edits_and_reports_compile_errors() {
        let crate_ = TestCrate::new(r#"["cdylib", "rlib"]"#, &lib_rs(1));
        let builder = crate_.builder();
        let first = builder.build().unwrap();
        let loaded = xxhash_rust::xxh3::xxh3_64(&std::fs::read(&first).unwrap());
        let library = LibraryWatcher::new(&first, loaded).unwrap();
        let watch = builder.watch().unwrap();

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
        assert_eq!(new.bytes, std::fs::read(&artifact).unwrap());

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
    fn a_crate_without_a_cdylib_is_a_clear_error() {
        let crate_ = TestCrate::new(r#"["rlib"]"#, "pub fn f() -> u32 { 1 }\n");
        let error = crate_.builder().build().unwrap_err();
        assert!(matches!(error, BuildError::NoCdylib { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(r#"crate-type = ["cdylib", "rlib"]"#),
            "{message}"
        );
        assert!(message.contains("grove-builder-probe"), "{message}");
    }

    #[test]
    fn a_directory_without_cargo_toml_is_not_a_crate() {
        let dir = tempfile::tempdir().unwrap();
        let error = CrateBuilder::new(dir.path(), BuildOptions::default()).unwrap_err();
        assert!(matches!(error, BuildError::NotACrate { .. }), "{error:?}");
        assert!(error.to_string().contains("no Cargo.toml"), "{error}");
    }

    #[test]
    fn a_missing_cargo_says_to_check_path() {
        let crate_ = TestCrate::new(r#"["cdylib"]"#, &lib_rs(1));
        let mut builder = crate_.builder();
        builder.cargo = "/nonexistent/grove-test/cargo".into();
        let error = builder.build().unwrap_err();
        assert!(
            matches!(error, BuildError::CargoUnavailable { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("is cargo on PATH?"), "{error}");
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
