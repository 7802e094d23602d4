//! `cargo grove run`: a host for module crates, without writing one. Builds each crate,
//! loads it with the config its manifest names and the state kept from the last run, and
//! runs the engine with the dashboard (or plain lines when stdout is not a terminal).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use grove_runtime::{BuildError, BuildOptions, BuiltCrate, Engine};

use crate::error::{Error, Result};
use crate::logs::LogLines;
use crate::project::{self, ModuleCrate};
use crate::session::Session;

/// What `cargo grove run` was asked.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Module crates (package names or directories); none: every one of the workspace.
    pub crates: Vec<String>,
    /// The workspace's `Cargo.toml`; default: the one cargo finds from here.
    pub manifest_path: Option<PathBuf>,
    /// Build with `--release`.
    pub release: bool,
    /// Features to build the crates with.
    pub features: Vec<String>,
    /// Frames per second; default 60.
    pub fps: Option<f64>,
    /// Where states are kept; default: the workspace's `state-dir` setting.
    pub state_dir: Option<PathBuf>,
    /// Keep no state between runs.
    pub no_state: bool,
    /// Plain lines even on a terminal.
    pub plain: bool,
    /// Stop after this many frames.
    pub frames: Option<u64>,
}

/// Runs the modules until quit (q, Ctrl-C, SIGTERM) or `frames` have run.
pub fn run(options: RunOptions) -> Result<()> {
    let project = project::discover(options.manifest_path.as_deref(), &options.crates)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(Error::Terminal)?;
    }
    let mut builder = Engine::builder();
    if let Some(fps) = options.fps {
        builder = builder.target_fps(fps);
    }
    let state_dir = options
        .state_dir
        .clone()
        .unwrap_or(project.state_dir.clone());
    if !options.no_state {
        builder = builder.state_dir(&state_dir);
    }
    let mut engine = builder.build()?;
    if let Some(previous) = engine.previous_run() {
        eprintln!("grove: {previous}: modules resume from their last snapshot");
    }
    let build = BuildOptions {
        release: options.release,
        features: options.features.clone(),
        ..BuildOptions::default()
    };
    // The first builds print their progress (grove's own lines, on stderr) before the
    // dashboard takes the screen.
    let events = engine.subscribe();
    let mut crates = Vec::new();
    let mut waiting = Waiting::new(build.clone());
    for module in &project.modules {
        match first_build(&mut engine, module, &build, &stop)? {
            FirstLoad::Loaded(name) => crates.push((name, Some(module.dir.clone()))),
            FirstLoad::Failed(failed) => {
                eprintln!(
                    "grove: `{}` did not load: {}\ngrove: the other modules run; fix {} and save, \
                     and it loads when it builds again",
                    failed.name,
                    failed.error,
                    module.dir.display()
                );
                waiting.add(failed);
            }
            FirstLoad::Stopped => return Ok(()),
        }
    }
    if options.no_state {
        eprintln!("grove: no state is kept between runs (--no-state)");
    } else {
        eprintln!("grove: states are kept in {}", state_dir.display());
    }
    let title = project
        .root
        .file_name()
        .map_or_else(|| "run".to_owned(), |n| n.to_string_lossy().into_owned());
    let tui = !options.plain && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if !tui {
        return crate::plain::run(engine, waiting, &stop, options.frames);
    }
    let logs = match LogLines::install() {
        Ok(logs) => logs,
        Err(_) => return crate::plain::run(engine, waiting, &stop, options.frames),
    };
    for (name, dir) in &crates {
        let dir = dir
            .as_deref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        logs.push(&format!("loaded `{name}`, built from {dir}"));
    }
    logs.push(&if options.no_state {
        "no state is kept between runs (--no-state)".to_owned()
    } else {
        format!("states are kept in {}", state_dir.display())
    });
    for failed in waiting.crates() {
        logs.push(&format!(
            "`{}` did not load: {}; it loads when {} builds again",
            failed.name,
            failed.error,
            failed.dir.display()
        ));
    }
    let session = Session::new(title, engine, events, &crates, build, Some(logs.clone()))
        .with_waiting(waiting);
    crate::tui::run(session, &logs, &stop, options.frames)
}

/// How the first build and load of a crate went.
enum FirstLoad {
    /// Loaded, under this module name.
    Loaded(String),
    /// Built, but refused or failed at load: a new build may fix it.
    Failed(WaitingCrate),
    /// Stopped while waiting for a crate that does not compile.
    Stopped,
}

/// Builds and loads `module`'s crate. A crate that does not compile yet is not the end of
/// the run: the error is shown and the build runs again when a file of the crate changes.
/// A module that builds but does not load (a panic in `create` or `init`, a config or a
/// state refused) is not either: it is left to [`Waiting`] while the others run.
fn first_build(
    engine: &mut Engine,
    module: &ModuleCrate,
    build: &BuildOptions,
    stop: &AtomicBool,
) -> Result<FirstLoad> {
    let dir = module.dir.as_path();
    loop {
        let before = newest_change(dir);
        let error = match engine.watch_crate_with(dir, build.clone()) {
            Ok(name) => return Ok(FirstLoad::Loaded(name)),
            Err(grove_runtime::Error::Build { source, .. })
                if matches!(*source, BuildError::Compile { .. }) =>
            {
                source
            }
            Err(e) if rebuild_can_fix(&e) => {
                return Ok(FirstLoad::Failed(WaitingCrate {
                    name: module_named(&e).unwrap_or(&module.package).to_owned(),
                    dir: dir.to_owned(),
                    error: e.to_string(),
                    seen: before,
                }));
            }
            Err(e) => return Err(e.into()),
        };
        eprintln!("{}", error.rendered().unwrap_or_else(|| error.to_string()));
        eprintln!(
            "grove: {} does not compile yet: fix it and save, and it builds again (Ctrl-C to stop)",
            dir.display()
        );
        let before = newest_change(dir);
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(FirstLoad::Stopped);
            }
            std::thread::sleep(Duration::from_millis(250));
            if newest_change(dir) != before {
                break;
            }
        }
    }
}

/// Whether a module that built but did not load may load once its crate (or its config
/// file) changes: its own code or data refused it, not the host's setup.
fn rebuild_can_fix(error: &grove_runtime::Error) -> bool {
    use grove_runtime::Error as E;
    matches!(
        error,
        E::Panicked { .. }
            | E::Failed { .. }
            | E::ConfigRefused { .. }
            | E::ConfigFile { .. }
            | E::NoConfig { .. }
            | E::Manifest { .. }
            | E::LossyState { .. }
            | E::UnrelatedState { .. }
            | E::StateFailed { .. }
            | E::BadSnapshot { .. }
            | E::NotAModule { .. }
            | E::AbiMismatch { .. }
            | E::PanicAbort { .. }
            | E::Open { .. }
            | E::DuplicateModule { .. }
    )
}

/// The module an error names, if it names one.
fn module_named(error: &grove_runtime::Error) -> Option<&str> {
    use grove_runtime::Error as E;
    match error {
        E::Panicked { module, .. }
        | E::Failed { module, .. }
        | E::ConfigRefused { module, .. }
        | E::ConfigFile { module, .. }
        | E::NoConfig { module }
        | E::LossyState { module, .. }
        | E::UnrelatedState { module, .. }
        | E::StateFailed { module, .. }
        | E::BadSnapshot { module, .. }
        | E::AbiMismatch { module, .. }
        | E::PanicAbort { module, .. } => Some(module),
        _ => None,
    }
}

/// A module crate that built but did not load.
#[derive(Debug, Clone)]
pub struct WaitingCrate {
    /// Its module's name (its package name when the error named none).
    pub name: String,
    /// Its crate.
    pub dir: PathBuf,
    /// Why it did not load, the last time it was tried.
    pub error: String,
    /// Its files' latest change when it was last tried.
    seen: Option<SystemTime>,
}

/// What became of a waiting crate tried again.
#[derive(Debug, Clone)]
pub enum Retried {
    /// It loaded, under this name.
    Loaded {
        /// The module name it loaded under.
        name: String,
        /// The name it waited under.
        waited_as: String,
    },
    /// It still did not load.
    Failed(WaitingCrate),
}

/// The module crates that did not load at the start: tried again, while the others run,
/// each time a file of the crate changes (a fix saved, a config edited). The build runs on
/// a thread of its own, so frames go on meanwhile; only the load is the frame thread's.
#[derive(Debug)]
pub struct Waiting {
    crates: Vec<WaitingCrate>,
    build: BuildOptions,
    last_poll: Option<Instant>,
    /// Builds under way, by crate directory.
    building: Vec<(
        PathBuf,
        JoinHandle<std::result::Result<BuiltCrate, BuildError>>,
    )>,
}

impl Waiting {
    /// None waiting yet; `build` is how to build them again.
    pub fn new(build: BuildOptions) -> Self {
        Self {
            crates: Vec::new(),
            build,
            last_poll: None,
            building: Vec::new(),
        }
    }

    /// Waits for `failed`'s crate to change.
    pub fn add(&mut self, failed: WaitingCrate) {
        self.crates.push(failed);
    }

    /// The crates waiting.
    pub fn crates(&self) -> &[WaitingCrate] {
        &self.crates
    }

    /// Starts a build, at most a few times a second, of each crate whose files changed
    /// since it was last tried, and loads each crate whose build finished. A module that
    /// loaded some other way (the dashboard's `l` key) stops waiting.
    pub fn poll(&mut self, engine: &mut Engine) -> Vec<Retried> {
        if self.crates.is_empty()
            || self
                .last_poll
                .is_some_and(|at| at.elapsed() < Duration::from_millis(250))
        {
            return Vec::new();
        }
        self.last_poll = Some(Instant::now());
        let loaded = engine.module_names();
        self.crates.retain(|c| !loaded.contains(&c.name));
        for waiting in &mut self.crates {
            let now = newest_change(&waiting.dir);
            if now == waiting.seen || self.building.iter().any(|(dir, _)| *dir == waiting.dir) {
                continue;
            }
            waiting.seen = now;
            let (dir, options) = (waiting.dir.clone(), self.build.clone());
            let build = std::thread::Builder::new()
                .name("grove-retry-build".into())
                .spawn(move || BuiltCrate::build(dir, options));
            match build {
                Ok(handle) => self.building.push((waiting.dir.clone(), handle)),
                Err(e) => waiting.error = format!("cannot start its build: {e}"),
            }
        }
        let mut outcomes = Vec::new();
        let mut index = 0;
        while index < self.building.len() {
            if !self.building[index].1.is_finished() {
                index += 1;
                continue;
            }
            let (dir, handle) = self.building.swap_remove(index);
            let Some(at) = self.crates.iter().position(|c| c.dir == dir) else {
                continue; // loaded some other way meanwhile
            };
            let Ok(built) = handle.join() else {
                let waiting = &mut self.crates[at];
                waiting.error = "its build thread panicked: saving a file tries again".into();
                eprintln!("grove: `{}` {}", waiting.name, waiting.error);
                outcomes.push(Retried::Failed(waiting.clone()));
                continue;
            };
            let result = built
                .map_err(|source| grove_runtime::Error::Build {
                    dir: dir.clone(),
                    source: std::sync::Arc::new(source),
                })
                .and_then(|built| engine.watch_built(built));
            match result {
                Ok(name) => {
                    eprintln!("grove: `{name}` loaded from {}", dir.display());
                    let waited_as = self.crates.remove(at).name;
                    outcomes.push(Retried::Loaded { name, waited_as });
                }
                Err(e) => {
                    let waiting = &mut self.crates[at];
                    waiting.error = match &e {
                        grove_runtime::Error::Build { source, .. } => {
                            if let Some(rendered) = source.rendered() {
                                eprintln!("{rendered}");
                            }
                            source.to_string()
                        }
                        e => e.to_string(),
                    };
                    if let Some(name) = module_named(&e) {
                        name.clone_into(&mut waiting.name);
                    }
                    eprintln!(
                        "grove: `{}` still does not load: {}",
                        waiting.name, waiting.error
                    );
                    outcomes.push(Retried::Failed(waiting.clone()));
                }
            }
        }
        outcomes
    }
}

/// The latest modification time of the crate's files (its `target/` aside).
fn newest_change(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if entry.file_name() != "target" && entry.file_name() != ".git" {
                    stack.push(entry.path());
                }
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                newest = newest.max(Some(modified));
            }
        }
    }
    newest
}
