//! The loop a module author lives in: an edit saved, cargo's incremental build, the reload,
//! the first frame of the new code. The hello module (examples/hello-module) is copied to a
//! scratch crate that depends on this checkout's grove-sdk, an unpaced engine watches it
//! (`watch_crate_with`, debug builds, as in development), and the source is edited again
//! and again: each edit sets the value `process` writes into the state, so the frame that
//! shows it is the first frame of the new code.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grove_runtime::{BuildOptions, DevProfile, Engine, EngineEvent};

use crate::{median, percentile, workspace_root};

/// The marker line each edit rewrites; `process` stores the number in the state.
const MARKER: &str = "self.edit = ";

/// A scratch copy of the hello module crate, and where cargo builds it.
#[derive(Debug)]
pub struct EditCrate {
    /// The crate's directory.
    pub dir: PathBuf,
    /// Its target directory: kept across runs of the benchmark (under the workspace's
    /// `target/`), so that only the first run builds the dependencies.
    pub target: PathBuf,
}

/// The part of the hello module's state the benchmark reads.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct EditState {
    edit: u64,
}

impl EditCrate {
    /// Copies examples/hello-module to a scratch directory: its source with a state field
    /// `edit` that `process` sets, a manifest depending on this checkout's grove-sdk, and
    /// the workspace's lock file, so it builds from the same dependency versions.
    pub fn scratch() -> Self {
        let root = workspace_root();
        let target = root.join("target").join("grove-bench").join("editloop");
        // Always at the same place: cargo keeps one fingerprint per package name in a
        // target directory, listing the last build's sources by absolute path, so a copy
        // in a new directory each run would have cargo look at an older copy left behind
        // (a run that was stopped), find it unchanged, and build nothing.
        let dir = target.join("crate");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        let source =
            std::fs::read_to_string(root.join("examples/hello-module/src/lib.rs")).unwrap();
        let with_field = source.replacen(
            "    pub inits: u32,\n",
            "    pub inits: u32,\n    /// The number of the last edit (the benchmark's).\n    pub edit: u64,\n",
            1,
        );
        let with_marker = with_field.replacen(
            "        self.count += self.config.step;\n",
            &format!("        self.count += self.config.step;\n        {MARKER}0;\n"),
            1,
        );
        assert!(
            with_marker.contains(MARKER) && with_marker.contains("pub edit: u64"),
            "examples/hello-module/src/lib.rs changed: the benchmark's edit has no place in it"
        );
        std::fs::write(dir.join("src/lib.rs"), with_marker).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"hello-module\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
                 [lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n\
                 [dependencies]\ngrove-sdk = {{ path = {:?} }}\n\
                 serde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
                root.join("grove-sdk").display().to_string()
            ),
        )
        .unwrap();
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        Self { dir, target }
    }

    /// Saves the source with edit number `n`, as editors that save atomically do (a
    /// temporary file renamed into place).
    pub fn edit(&self, n: u64) {
        let path = self.dir.join("src/lib.rs");
        let source = std::fs::read_to_string(&path).unwrap();
        let start = source.find(MARKER).unwrap() + MARKER.len();
        let end = start + source[start..].find(';').unwrap();
        let edited = format!("{}{n}{}", &source[..start], &source[end..]);
        let tmp = self.dir.join("src/.lib.rs.tmp");
        std::fs::write(&tmp, edited).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    /// Build options for the engine, with the given development profile.
    pub fn options(&self, dev_profile: DevProfile) -> BuildOptions {
        BuildOptions {
            target_dir: Some(self.target.clone()),
            dev_profile,
            ..BuildOptions::default()
        }
    }
}

/// One edit, timed.
#[derive(Debug, Clone, Copy)]
struct Edit {
    /// Saved -> the engine reports the build started.
    to_build: Duration,
    /// cargo's run, as the builder timed it.
    cargo: Duration,
    /// The library at its path (cargo's hard link, as inotify reports it) -> the end of
    /// the first frame of the new code.
    to_new_code: Duration,
    /// Saved -> the end of the first frame of the new code.
    total: Duration,
    /// The reload call (`Reloaded::took`).
    reload_call: Duration,
}

/// The edit loop, p50 and p95 of each part.
#[derive(Debug, Clone)]
pub struct EditLoopFigures {
    /// Edits measured.
    pub edits: usize,
    /// The library's size.
    pub library_bytes: u64,
    /// Saved -> build started: p50, p95.
    pub to_build: (Duration, Duration),
    /// cargo: p50, p95.
    pub cargo: (Duration, Duration),
    /// Library on disk -> first frame of new code: p50, p95.
    pub to_new_code: (Duration, Duration),
    /// Saved -> first frame of new code: p50, p95.
    pub total: (Duration, Duration),
    /// The reload call: p50.
    pub reload_call: Duration,
    /// Two of the libraries built (consecutive edits), copied aside for the reload-only
    /// measurement.
    pub libraries: (PathBuf, PathBuf),
}

/// Runs `edits` edits (after two not measured) of `krate` under an engine watching it.
pub fn edit_loop(krate: &EditCrate, dev_profile: DevProfile, edits: usize) -> EditLoopFigures {
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .console(false)
        .build()
        .unwrap();
    let events = engine.subscribe();
    let name = engine
        .watch_crate_with(&krate.dir, krate.options(dev_profile))
        .unwrap();
    engine.run_frames(10);
    let artifact = krate.target.join("debug/libhello_module.so");
    let linked = Linked::watch(&artifact);
    let out = krate.target.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut timed = Vec::new();
    let mut libraries = (PathBuf::new(), PathBuf::new());
    let warm_up = 2;
    for n in 1..=(edits + warm_up) as u64 {
        // Let the engine settle, and the file system's timestamps move on.
        engine.run_frames(10);
        std::thread::sleep(Duration::from_millis(100));
        let generation = engine.generation(&name).unwrap();
        linked.take();
        krate.edit(n);
        let saved = Instant::now();
        let edit = step_until_new_code(&mut engine, &events, &name, generation, saved);
        let state: EditState = engine.module_state(&name).unwrap();
        assert_eq!(
            state.edit, n,
            "the first frame after the reload ran edit {n}"
        );
        // When the new library appeared at its path (cargo hard-links it there from deps/),
        // as inotify told a watcher of the bench's own. (The inode's change time would do,
        // but the kernel stamps it from a coarse clock: 4 ms steps here.)
        let on_disk = linked
            .take()
            .expect("the library was linked into place after the edit");
        let to_new_code = edit.new_code.saturating_duration_since(on_disk);
        if n as usize > warm_up {
            timed.push(Edit {
                to_build: edit.started.duration_since(saved),
                cargo: edit.cargo,
                to_new_code,
                total: edit.new_code.duration_since(saved),
                reload_call: edit.reload_call,
            });
        }
        if n as usize == warm_up + 1 {
            libraries.0 = out.join(format!("libhello-{dev_profile:?}-a.so"));
            std::fs::copy(&artifact, &libraries.0).unwrap();
        }
        if n as usize == warm_up + 2 {
            libraries.1 = out.join(format!("libhello-{dev_profile:?}-b.so"));
            std::fs::copy(&artifact, &libraries.1).unwrap();
        }
    }
    engine.shutdown().unwrap();
    let pick = |f: fn(&Edit) -> Duration| {
        let mut samples: Vec<Duration> = timed.iter().map(f).collect();
        (median(&mut samples), percentile(&mut samples, 0.95))
    };
    EditLoopFigures {
        edits,
        library_bytes: std::fs::metadata(&artifact).unwrap().len(),
        to_build: pick(|e| e.to_build),
        cargo: pick(|e| e.cargo),
        to_new_code: pick(|e| e.to_new_code),
        total: pick(|e| e.total),
        reload_call: pick(|e| e.reload_call).0,
        libraries,
    }
}

/// When each step of one edit was seen.
struct Seen {
    started: Instant,
    cargo: Duration,
    reload_call: Duration,
    new_code: Instant,
}

/// Steps the engine until module `name` runs a generation past `generation`, noting when
/// the build started and how long cargo and the reload took.
fn step_until_new_code(
    engine: &mut Engine,
    events: &Receiver<EngineEvent>,
    name: &str,
    generation: u64,
    saved: Instant,
) -> Seen {
    let deadline = saved + Duration::from_secs(600);
    let (mut started, mut cargo, mut reload_call, mut new_code) = (None, None, None, None);
    loop {
        engine.step();
        let now = Instant::now();
        if new_code.is_none() && engine.generation(name).unwrap() > generation {
            new_code = Some(now);
        }
        for event in events.try_iter() {
            match event {
                EngineEvent::BuildStarted { .. } => started = started.or(Some(now)),
                EngineEvent::BuildFinished { took, .. } => cargo = Some(took),
                EngineEvent::Reloaded(r) => reload_call = Some(r.took),
                EngineEvent::BuildFailed { error, .. } => panic!("the edit did not build: {error}"),
                EngineEvent::ReloadRefused { error, .. } => panic!("reload refused: {error}"),
                _ => {}
            }
        }
        if let (Some(started), Some(cargo), Some(reload_call), Some(new_code)) =
            (started, cargo, reload_call, new_code)
        {
            return Seen {
                started,
                cargo,
                reload_call,
                new_code,
            };
        }
        assert!(
            Instant::now() < deadline,
            "no new code 10 minutes after the edit"
        );
        // A host stepping as fast as it can would take a core from cargo on a small
        // machine; this one looks every 0.1 ms.
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// The size of the file at `path`.
pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// When a file was last created at a path (cargo's hard link of a new library), as a
/// watcher of the benchmark's own hears it.
struct Linked {
    at: Arc<Mutex<Option<Instant>>>,
    _watcher: notify::RecommendedWatcher,
}

impl Linked {
    fn watch(path: &Path) -> Self {
        use notify::Watcher;
        let at = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&at);
        let file = path.to_owned();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event
                    && matches!(event.kind, notify::EventKind::Create(_))
                    && event.paths.contains(&file)
                {
                    *seen.lock().unwrap() = Some(Instant::now());
                }
            })
            .unwrap();
        watcher
            .watch(path.parent().unwrap(), notify::RecursiveMode::NonRecursive)
            .unwrap();
        Self {
            at,
            _watcher: watcher,
        }
    }

    /// The last creation seen, forgotten.
    fn take(&self) -> Option<Instant> {
        self.at.lock().unwrap().take()
    }
}
