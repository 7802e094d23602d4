//! `cargo grove run`: a host for module crates, without writing one. Builds each crate,
//! loads it with the config its manifest names and the state kept from the last run, and
//! runs the engine with the dashboard (or plain lines when stdout is not a terminal).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use grove_runtime::{BuildError, BuildOptions, Engine};

use crate::error::{Error, Result};
use crate::logs::LogLines;
use crate::project;
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
    for module in &project.modules {
        let Some(name) = first_build(&mut engine, &module.dir, &build, &stop)? else {
            return Ok(());
        };
        crates.push((name, Some(module.dir.clone())));
    }
    let title = project
        .root
        .file_name()
        .map_or_else(|| "run".to_owned(), |n| n.to_string_lossy().into_owned());
    let tui = !options.plain && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if !tui {
        return crate::plain::run(engine, &stop, options.frames);
    }
    let logs = match LogLines::install() {
        Ok(logs) => logs,
        Err(_) => return crate::plain::run(engine, &stop, options.frames),
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
    let session = Session::new(title, engine, events, &crates, build, Some(logs.clone()));
    crate::tui::run(session, &logs, &stop, options.frames)
}

/// Builds and loads the crate in `dir`. A crate that does not compile yet is not the end of
/// the run: the error is shown and the build runs again when a file of the crate changes.
/// `None` when stopped while waiting.
fn first_build(
    engine: &mut Engine,
    dir: &Path,
    build: &BuildOptions,
    stop: &AtomicBool,
) -> Result<Option<String>> {
    loop {
        let error = match engine.watch_crate_with(dir, build.clone()) {
            Ok(name) => return Ok(Some(name)),
            Err(grove_runtime::Error::Build { source, .. })
                if matches!(*source, BuildError::Compile { .. }) =>
            {
                source
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
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(250));
            if newest_change(dir) != before {
                break;
            }
        }
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
