//! Measurements shared by the `grove-bench` table and the criterion benches. Every figure
//! comes with a floor measured in the same run, so ratios survive a noisy machine.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grove::abi::FrameInfo;
use grove::state::{self, StateFormat};
use grove::tracing::level_filters::LevelFilter;
use grove::tracing::span::{Attributes, Id, Record};
use grove::tracing::subscriber::Interest;
use grove::tracing::{Event, Level, Metadata, Subscriber};
use grove::{Context, Module};
use grove_runtime::{Engine, LoadedModule, Staging};
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use serde::{Deserialize, Serialize};

pub mod bigstate;
pub mod editloop;
pub mod table;

/// The fixture libraries, built once with `--release`.
#[derive(Debug, Clone)]
pub struct Fixtures {
    /// The default build.
    pub v1: PathBuf,
    /// Same schema, different code.
    pub v2: PathBuf,
    /// Emits `tracing` events in `process` (the `logs` feature).
    pub logs: PathBuf,
    /// The module `sender` (publishes).
    pub sender: PathBuf,
    /// The module `receiver` (subscribes).
    pub receiver: PathBuf,
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Builds `package` (release) with `feature`, and copies its library `lib{artifact}.so`
/// to `lib{prefix}-{name}.so` so that each variant keeps its own file.
fn build_release_variant(
    package: &str,
    artifact: &str,
    prefix: &str,
    feature: Option<&str>,
    name: &str,
) -> PathBuf {
    let target = workspace_root().join("target").join("grove-bench");
    let out = target.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            package,
            "--target-dir",
        ])
        .arg(&target);
    if let Some(feature) = feature {
        cmd.args(["--features", feature]);
    }
    assert!(
        cmd.status().expect("cargo runs").success(),
        "building {package} failed"
    );
    let copy = out.join(format!("lib{prefix}-{name}.so"));
    std::fs::copy(target.join(format!("release/lib{artifact}.so")), &copy).unwrap();
    copy
}

/// Builds the benchmark module (release) in its variants.
pub fn build_fixtures() -> Fixtures {
    let build = |feature: Option<&str>, name: &str| {
        build_release_variant("grove-bench-module", "bench_module", "bench", feature, name)
    };
    Fixtures {
        v1: build(None, "v1"),
        v2: build(Some("v2"), "v2"),
        logs: build(Some("logs"), "logs"),
        sender: build(Some("sender"), "sender"),
        receiver: build(Some("receiver"), "receiver"),
    }
}

/// Median of `samples` (sorted in place).
pub fn median(samples: &mut [Duration]) -> Duration {
    percentile(samples, 0.5)
}

/// The `q` quantile of `samples` (sorted in place).
pub fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

/// The floor of a reload, by hand: copy the library to a fresh path, `dlopen` it and look
/// up its create symbol (`load`); then `dlclose` it and delete the copy (`close`), the
/// floor of retiring an old version.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    /// Copy + dlopen + dlsym.
    pub load: Duration,
    /// dlclose + delete.
    pub close: Duration,
}

/// Runs the floor once.
pub fn floor_load(library: &Path, dir: &Path, n: usize) -> Floor {
    let symbol = create_symbol(library);
    let copy = dir.join(format!("floor-{n}.so"));
    let started = Instant::now();
    std::fs::copy(library, &copy).unwrap();
    // SAFETY: the benchmark fixture is a grove module library, whose loading runs no code
    // of its own.
    let lib = unsafe { Library::open(Some(&copy), RTLD_NOW | RTLD_LOCAL) }.unwrap();
    // SAFETY: the symbol exists (found in the file) and is only looked up, not called.
    let create = unsafe { lib.get::<*const u8>(symbol.as_bytes()) }.unwrap();
    std::hint::black_box(*create);
    let load = started.elapsed();
    let started = Instant::now();
    lib.close().unwrap();
    std::fs::remove_file(&copy).unwrap();
    Floor {
        load,
        close: started.elapsed(),
    }
}

fn create_symbol(library: &Path) -> String {
    let bytes = std::fs::read(library).unwrap();
    let needle = b"grove_create_module__";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("a create symbol in the fixture");
    let end = bytes[at..].iter().position(|&b| b == 0).unwrap();
    String::from_utf8(bytes[at..at + end].to_vec()).unwrap()
}

/// A frame numbered `n`.
pub fn frame(n: u64) -> FrameInfo {
    FrameInfo {
        frame: n,
        delta_ns: 16_666_667,
        elapsed_ns: n * 16_666_667,
    }
}

/// A module loaded with `state_bytes` of state, ready to be reloaded.
pub fn loaded_with_state(
    library: &Path,
    state_bytes: usize,
    staging: &Arc<Staging>,
) -> LoadedModule {
    // SAFETY: the benchmark is single-threaded here; nothing else reads the environment.
    unsafe { std::env::set_var("GROVE_BENCH_STATE_BYTES", state_bytes.to_string()) };
    let module = LoadedModule::load_in(library, staging, &frame(0)).unwrap();
    // Only this load's `init` reads it; later modules start empty.
    // SAFETY: as above.
    unsafe { std::env::remove_var("GROVE_BENCH_STATE_BYTES") };
    module
}

/// Reload call vs floor, for one state size.
#[derive(Debug, Clone)]
pub struct ReloadFigures {
    /// State carried over.
    pub state_bytes: usize,
    /// Median of the whole `reload` call (stage, swap, retire the old library).
    pub reload: Duration,
    /// Median of stage -> load new -> save -> restore -> init, ready to swap
    /// (`Reloaded::took`).
    pub swap: Duration,
    /// Median of retiring the old version: the whole call minus the swap.
    pub retire: Duration,
    /// Median floor of loading: copy + dlopen + dlsym, interleaved with the reloads.
    pub floor: Duration,
    /// Median floor of retiring: dlclose + delete.
    pub floor_close: Duration,
    /// Samples of each.
    pub samples: usize,
}

/// Times `samples` reloads of `library` carrying `state_bytes`, interleaved with floor runs.
pub fn reload_call(library: &Path, state_bytes: usize, samples: usize) -> ReloadFigures {
    let staging = Arc::new(Staging::new().unwrap());
    let dir = staging.path().to_owned();
    let mut module = loaded_with_state(library, state_bytes, &staging);
    let (mut reloads, mut swaps, mut retires) = (Vec::new(), Vec::new(), Vec::new());
    let (mut floors, mut closes) = (Vec::new(), Vec::new());
    for i in 0..samples + 3 {
        let started = Instant::now();
        let reloaded = module.reload(library, &frame(i as u64)).unwrap();
        let reload = started.elapsed();
        let floor = floor_load(library, &dir, i);
        if i >= 3 {
            reloads.push(reload);
            swaps.push(reloaded.took);
            retires.push(reload.saturating_sub(reloaded.took));
            floors.push(floor.load);
            closes.push(floor.close);
        }
        assert!(
            reloaded.state_bytes >= state_bytes,
            "the state was carried over"
        );
    }
    ReloadFigures {
        state_bytes,
        reload: median(&mut reloads),
        swap: median(&mut swaps),
        retire: median(&mut retires),
        floor: median(&mut floors),
        floor_close: median(&mut closes),
        samples,
    }
}

/// New file on disk -> new code running, through the watcher.
#[derive(Debug, Clone)]
pub struct LatencyFigures {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
    /// Reloads measured.
    pub samples: usize,
    /// Median floor (copy + dlopen + dlsym) of the same library, same run.
    pub floor: Duration,
}

/// Renames alternating versions into place `samples` times while an unpaced engine steps,
/// timing from the rename to the end of the frame that ran the new code.
pub fn watcher_latency(fixtures: &Fixtures, samples: usize) -> LatencyFigures {
    file_latency(&fixtures.v1, &fixtures.v2, samples)
}

/// As [`watcher_latency`], for any two builds of one module: `v1` is loaded first, then
/// `v2` and `v1` take turns.
pub fn file_latency(v1: &Path, v2: &Path, samples: usize) -> LatencyFigures {
    let staging = Arc::new(Staging::new().unwrap());
    let dir = staging.path().join("watched");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("libbench.so");
    std::fs::copy(v1, &path).unwrap();
    let mut engine = Engine::builder().target_fps(0.0).build().unwrap();
    let name = engine.load_module(&path).unwrap();
    let mut latencies = Vec::new();
    let mut floors = Vec::new();
    for i in 0..samples + 2 {
        let source = if i % 2 == 0 { v2 } else { v1 };
        let tmp = dir.join("libbench.so.tmp");
        std::fs::copy(source, &tmp).unwrap();
        // On disk before the rename: renaming over a file whose data is still in the page
        // cache makes ext4 flush it inside `rename` (auto_da_alloc), which blocks the
        // renaming thread for milliseconds while the watcher, woken in the middle of the
        // call, already copies the file: the rename's start and end would both be wrong
        // origins.
        std::fs::File::open(&tmp).unwrap().sync_all().unwrap();
        engine.run_frames(20);
        let generation = engine.generation(&name).unwrap();
        let renamed = Instant::now();
        std::fs::rename(&tmp, &path).unwrap();
        let deadline = renamed + Duration::from_secs(10);
        while engine.generation(&name).unwrap() == generation {
            assert!(
                Instant::now() < deadline,
                "the watcher never reported the new library"
            );
            engine.step();
        }
        let latency = renamed.elapsed();
        if i >= 2 {
            latencies.push(latency);
            // In the same conditions: the old version retired (its copy deleted: the
            // staging area's thread must not run during the floor), the frames that follow
            // a reload run, then the same file copied and opened by hand.
            engine.staging().wait_for_removals();
            engine.run_frames(20);
            floors.push(floor_load(source, staging.path(), i).load);
        }
    }
    engine.shutdown().unwrap();
    LatencyFigures {
        p50: percentile(&mut latencies, 0.5),
        p99: percentile(&mut latencies, 0.99),
        max: percentile(&mut latencies, 1.0),
        samples,
        floor: median(&mut floors),
    }
}

/// Per module-frame cost, through the C ABI vs a direct call.
#[derive(Debug, Clone)]
pub struct OverheadFigures {
    /// Modules per frame.
    pub modules: usize,
    /// Nanoseconds per module-frame through vtable + panic guard.
    pub abi_ns: f64,
    /// Nanoseconds per module-frame through the engine (static modules: scheduling,
    /// timing and panic guard, no C ABI).
    pub engine_ns: f64,
    /// Nanoseconds per module-frame calling `Module::process` directly.
    pub direct_ns: f64,
}

/// Measures `frames` frames of `modules` modules each way.
pub fn overhead(library: &Path, modules: usize, frames: u64) -> OverheadFigures {
    let mut instances = grove_runtime::bench_support::Instances::load(library, modules).unwrap();
    let mut direct: Vec<bench_module::Bench> = (0..modules).map(|_| Default::default()).collect();
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .build()
        .unwrap();
    for i in 0..modules {
        engine
            .add_static(format!("m{i}"), bench_module::Bench::default())
            .unwrap();
    }
    let per = |took: Duration| took.as_nanos() as f64 / (modules as f64 * frames as f64);
    let mut best = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..5 {
        let started = Instant::now();
        for n in 0..frames {
            instances.process_all(&frame(n)).unwrap();
        }
        best.0 = best.0.min(per(started.elapsed()));

        let started = Instant::now();
        engine.run_frames(frames);
        best.1 = best.1.min(per(started.elapsed()));

        let started = Instant::now();
        for n in 0..frames {
            let mut ctx = Context::from_frame(frame(n));
            for module in &mut direct {
                module.process(&mut ctx);
            }
        }
        std::hint::black_box(&direct);
        best.2 = best.2.min(per(started.elapsed()));
    }
    engine.shutdown().unwrap();
    OverheadFigures {
        modules,
        abi_ns: best.0,
        engine_ns: best.1,
        direct_ns: best.2,
    }
}

/// Frame pacing over a run.
#[derive(Debug, Clone)]
pub struct PacingFigures {
    /// Target rate.
    pub fps: f64,
    /// Frames run.
    pub frames: usize,
    /// Achieved mean rate.
    pub achieved: f64,
    /// |interval - period| percentiles.
    pub error_p50: Duration,
    /// 99th percentile.
    pub error_p99: Duration,
    /// Largest.
    pub error_max: Duration,
}

#[derive(Debug)]
struct Recorder(Arc<Mutex<Vec<Duration>>>);

impl Module for Recorder {
    fn process(&mut self, ctx: &mut Context) {
        self.0.lock().unwrap().push(ctx.elapsed());
    }
}

/// Runs an engine at `fps` for `seconds`, recording each frame's start.
pub fn pacing(fps: f64, seconds: f64) -> PacingFigures {
    let starts = Arc::new(Mutex::new(Vec::new()));
    let mut engine = Engine::builder().target_fps(fps).build().unwrap();
    engine
        .add_linked(
            grove_runtime::StaticModule::stateless("recorder", Recorder(Arc::clone(&starts))),
            None,
        )
        .unwrap();
    engine.run_frames((seconds * fps).round() as u64);
    engine.shutdown().unwrap();
    let starts = starts.lock().unwrap();
    let period = Duration::from_secs_f64(1.0 / fps);
    let span = (*starts.last().unwrap() - starts[0]).as_secs_f64();
    let mut errors: Vec<Duration> = starts
        .windows(2)
        .map(|w| (w[1] - w[0]).abs_diff(period))
        .collect();
    PacingFigures {
        fps,
        frames: starts.len(),
        achieved: (starts.len() - 1) as f64 / span,
        error_p50: percentile(&mut errors, 0.5),
        error_p99: percentile(&mut errors, 0.99),
        error_max: percentile(&mut errors, 1.0),
    }
}

/// A game-like state for the format benchmark.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct World {
    frame: u64,
    name: String,
    particles: Vec<Particle>,
    heights: Vec<f32>,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
struct Particle {
    pos: [f32; 3],
    vel: [f32; 3],
    id: u64,
    alive: bool,
}

impl World {
    /// About `bytes` of in-memory data.
    pub fn sized(bytes: usize) -> Self {
        let n = bytes / 64;
        World {
            frame: 42,
            name: "world".into(),
            particles: (0..n)
                .map(|i| Particle {
                    pos: [i as f32; 3],
                    vel: [1.5; 3],
                    id: i as u64 * 7919,
                    alive: i % 3 != 0,
                })
                .collect(),
            heights: (0..n * 6).map(|i| i as f32 * 0.25).collect(),
            tags: (0..n / 8).map(|i| format!("tag-{i}")).collect(),
        }
    }
}

/// A game-like state with the shapes real states have: units in a `HashMap`, nested
/// enums (one with an alias), options, tuples and strings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Game {
    tick: u64,
    units: HashMap<u32, Unit>,
    phase: Phase,
    scores: BTreeMap<String, i64>,
    log: Vec<LogLine>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Unit {
    pos: (f32, f32),
    hp: i32,
    order: Order,
    target: Option<u32>,
    inventory: Vec<Item>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
enum Order {
    Idle,
    Move { to: (f32, f32), run: bool },
    Attack(u32),
    Feel(Mood),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
enum Mood {
    Calm,
    #[serde(alias = "Mad")]
    Angry {
        at: Option<u32>,
    },
    Scared(f64),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
enum Item {
    Coin(u64),
    Potion { heal: u16 },
    Key(char),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
enum Phase {
    #[default]
    Lobby,
    Playing {
        level: u8,
    },
    Over(Option<String>),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
enum LogLine {
    Spawned(u32),
    Died { unit: u32, by: Option<u32> },
    Said(u32, String),
}

impl Game {
    /// About `bytes` of in-memory data (a unit, its map entry, its inventory and its share
    /// of the log come to about 160 bytes).
    pub fn sized(bytes: usize) -> Self {
        let n = bytes / 160;
        let units = (0..n as u32)
            .map(|i| {
                let order = match i % 4 {
                    0 => Order::Idle,
                    1 => Order::Move {
                        to: (i as f32, -1.5),
                        run: i % 2 == 0,
                    },
                    2 => Order::Attack(i / 2),
                    _ => Order::Feel(match i % 3 {
                        0 => Mood::Calm,
                        1 => Mood::Angry {
                            at: Some(i + 1).filter(|_| i % 2 == 0),
                        },
                        _ => Mood::Scared(0.5),
                    }),
                };
                let inventory = (0..4)
                    .map(|k| match (i + k) % 3 {
                        0 => Item::Coin(u64::from(i) * 10),
                        1 => Item::Potion { heal: k as u16 },
                        _ => Item::Key('k'),
                    })
                    .collect();
                let unit = Unit {
                    pos: (i as f32 * 0.25, 3.0),
                    hp: 100 - (i % 100) as i32,
                    order,
                    target: (i % 3 == 0).then_some(i ^ 1),
                    inventory,
                };
                (i, unit)
            })
            .collect();
        Game {
            tick: 42,
            units,
            phase: Phase::Playing { level: 3 },
            scores: (0..n / 16)
                .map(|i| (format!("player-{i}"), i as i64))
                .collect(),
            log: (0..n as u32 / 2)
                .map(|i| match i % 3 {
                    0 => LogLine::Spawned(i),
                    1 => LogLine::Died {
                        unit: i,
                        by: Some(i + 1),
                    },
                    _ => LogLine::Said(i, format!("gg {i}")),
                })
                .collect(),
        }
    }
}

/// Save + load per MiB of in-memory state, for each format, against a deep copy.
#[derive(Debug, Clone)]
pub struct FormatFigures {
    /// Encoded size of the 1 MiB state, positional.
    pub positional_bytes: usize,
    /// Encoded size, self-describing.
    pub self_describing_bytes: usize,
    /// Save + load, positional (the load checked by encoding again).
    pub positional: Duration,
    /// Save + load, self-describing.
    pub self_describing: Duration,
    /// A deep copy (`clone`) of the same state: the floor of moving it anywhere.
    pub clone: Duration,
    /// Whether a reload between two versions with this state takes the positional path:
    /// its schema is traced, and a positional load gives back the value saved.
    pub takes_positional: bool,
}

/// Times both formats on a 1 MiB [`World`] (best of `rounds`).
pub fn formats(rounds: usize) -> FormatFigures {
    formats_of(&World::sized(1 << 20), rounds)
}

/// Times both formats on a 1 MiB [`Game`] (best of `rounds`).
pub fn game_formats(rounds: usize) -> FormatFigures {
    formats_of(&Game::sized(1 << 20), rounds)
}

fn formats_of<T>(state: &T, rounds: usize) -> FormatFigures
where
    T: Serialize + serde::de::DeserializeOwned + Clone + PartialEq,
{
    let time = |format: StateFormat| {
        (0..rounds)
            .map(|_| {
                let started = Instant::now();
                let bytes = state::save(state, format).unwrap();
                let back: T = state::restore(&bytes, format).unwrap();
                std::hint::black_box(back);
                started.elapsed()
            })
            .min()
            .unwrap()
    };
    let clone = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(state.clone());
            started.elapsed()
        })
        .min()
        .unwrap();
    let positional_bytes = state::save(state, StateFormat::Positional).unwrap();
    let traced = StateFormat::between(state::fingerprint::<T>(), state::fingerprint::<T>())
        == StateFormat::Positional;
    let exact = state::restore::<T>(&positional_bytes, StateFormat::Positional)
        .is_ok_and(|back| back == *state);
    FormatFigures {
        positional_bytes: positional_bytes.len(),
        self_describing_bytes: state::save(state, StateFormat::SelfDescribing)
            .unwrap()
            .len(),
        positional: time(StateFormat::Positional),
        self_describing: time(StateFormat::SelfDescribing),
        clone,
        takes_positional: traced && exact,
    }
}

/// The many fixture (tests/fixtures/many, `--release`): the new and old version of a module
/// loaded hundreds of times under distinct names.
#[derive(Debug, Clone)]
pub struct ManyFixture {
    /// The default build.
    pub v1: PathBuf,
    /// Same state, new code.
    pub v2: PathBuf,
}

/// The module name the many fixture is built with, replaced in each copy.
const MANY_PLACEHOLDER: &str = "many_000";

/// Builds the many fixture (release) in its two versions.
pub fn build_many_fixture() -> ManyFixture {
    let build = |feature: Option<&str>, name: &str| {
        build_release_variant("many-fixture", "many", "many", feature, name)
    };
    ManyFixture {
        v1: build(None, "v1"),
        v2: build(Some("v2"), "v2"),
    }
}

/// Many watched modules replaced at once.
#[derive(Debug, Clone)]
pub struct ManyFigures {
    /// Modules.
    pub modules: usize,
    /// Library size, bytes.
    pub library_bytes: u64,
    /// From the first rename to the end of the frame that reloaded the last module.
    pub all_reloaded: Duration,
    /// The longest frame (`step`) from the renames until all were reloaded.
    pub longest_frame: Duration,
    /// Frames that reloaded at least one module.
    pub reload_frames: usize,
    /// Frames stepped from the renames until all were reloaded.
    pub frames: usize,
    /// Resident set size before loading, once loaded, and after the reloads (the old
    /// libraries unmapped).
    pub rss_before: u64,
    /// See `rss_before`.
    pub rss_loaded: u64,
    /// See `rss_before`.
    pub rss_after: u64,
    /// Floor: copying and `dlopen`ing the same new files by hand, one after another, all of
    /// them.
    pub floor: Duration,
    /// Floor: RSS growth with the same files `dlopen`ed by hand.
    pub floor_rss: u64,
    /// The reload budget the engine ran with.
    pub budget: Duration,
}

/// Loads `modules` renamed copies of the many fixture into one engine (unpaced, watching
/// them), renames a new version over every file at once, and steps until all have
/// reloaded; then the floor: the same new files copied and `dlopen`ed by hand.
pub fn many_modules(fixture: &ManyFixture, modules: usize) -> ManyFigures {
    let scratch = tempfile::Builder::new()
        .prefix("grove-bench-many-")
        .tempdir_in(workspace_root().join("target"))
        .unwrap();
    let dir = scratch.path().join("watched");
    let next = scratch.path().join("next");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&next).unwrap();
    let mut v1 = grove_runtime::bench_support::Renamer::new(&fixture.v1, MANY_PLACEHOLDER).unwrap();
    let mut v2 = grove_runtime::bench_support::Renamer::new(&fixture.v2, MANY_PLACEHOLDER).unwrap();
    let files: Vec<(PathBuf, PathBuf)> = (0..modules)
        .map(|i| {
            let name = format!("many_{i:03}");
            let file = format!("lib{name}.so");
            v1.write(&dir.join(&file), &name).unwrap();
            v2.write(&next.join(&file), &name).unwrap();
            (dir.join(&file), next.join(&file))
        })
        .collect();
    let library_bytes = std::fs::metadata(&fixture.v2).unwrap().len();
    // The floor's own copies, kept for after the engine's run.
    let floor_sources = scratch.path().join("floor");
    std::fs::create_dir_all(&floor_sources).unwrap();
    for (_, new) in &files {
        std::fs::copy(new, floor_sources.join(new.file_name().unwrap())).unwrap();
    }

    let budget = grove_runtime::DEFAULT_RELOAD_BUDGET;
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .console(false)
        .build()
        .unwrap();
    let events = engine.subscribe();
    let rss_before = resources(engine.staging().path()).rss;
    let names: Vec<String> = files
        .iter()
        .map(|(path, _)| engine.load_module(path).unwrap())
        .collect();
    engine.run_frames(10);
    let rss_loaded = resources(engine.staging().path()).rss;

    let started = Instant::now();
    for (path, new) in &files {
        std::fs::rename(new, path).unwrap();
    }
    let (mut reloaded, mut reload_frames, mut frames) = (0, 0, 0);
    let mut longest_frame = Duration::ZERO;
    let deadline = started + Duration::from_secs(120);
    while reloaded < names.len() {
        assert!(Instant::now() < deadline, "not every module reloaded");
        let frame_started = Instant::now();
        engine.step();
        longest_frame = longest_frame.max(frame_started.elapsed());
        frames += 1;
        let now = events
            .try_iter()
            .filter(|e| matches!(e, grove_runtime::EngineEvent::Reloaded(_)))
            .count();
        reloaded += now;
        reload_frames += usize::from(now > 0);
    }
    let all_reloaded = started.elapsed();
    engine.run_frames(10);
    let rss_after = resources(engine.staging().path()).rss;
    engine.shutdown().unwrap();
    drop(engine);

    // The floor: the same new files, copied to fresh paths and opened, one after another.
    let floor_dir = scratch.path().join("floor-staged");
    std::fs::create_dir_all(&floor_dir).unwrap();
    let symbol = create_symbol(&fixture.v2);
    let rss_floor_before = resources(&floor_dir).rss;
    let started = Instant::now();
    let opened: Vec<Library> = files
        .iter()
        .map(|(path, _)| {
            let source = floor_sources.join(path.file_name().unwrap());
            let copy = floor_dir.join(path.file_name().unwrap());
            std::fs::copy(&source, &copy).unwrap();
            // SAFETY: a grove module library, whose loading runs no code of its own.
            let lib = unsafe { Library::open(Some(&copy), RTLD_NOW | RTLD_LOCAL) }.unwrap();
            // SAFETY: the symbol exists (found in the file) and is only looked up.
            let create = unsafe { lib.get::<*const u8>(symbol.as_bytes()) }.unwrap();
            std::hint::black_box(*create);
            lib
        })
        .collect();
    let floor = started.elapsed();
    let floor_rss = resources(&floor_dir).rss.saturating_sub(rss_floor_before);
    for lib in opened {
        lib.close().unwrap();
    }
    ManyFigures {
        modules,
        library_bytes,
        all_reloaded,
        longest_frame,
        reload_frames,
        frames,
        rss_before,
        rss_loaded,
        rss_after,
        floor,
        floor_rss,
        budget,
    }
}

/// Process resources, for the leak check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// Resident set size, bytes.
    pub rss: u64,
    /// Open file descriptors.
    pub fds: usize,
    /// Distinct files in the staging directory that are mapped.
    pub mapped: usize,
    /// Files in the staging directory.
    pub staged: usize,
}

/// Reads this process's resources relative to `staging`.
pub fn resources(staging: &Path) -> Resources {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let resident: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    Resources {
        rss: resident * 4096,
        fds: std::fs::read_dir("/proc/self/fd").unwrap().count(),
        mapped: grove_runtime::bench_support::mapped_files_in(staging),
        staged: std::fs::read_dir(staging).unwrap().count(),
    }
}

/// Resources before and after `reloads` reloads (after a warm-up).
pub fn soak(library: &Path, reloads: usize) -> (Resources, Resources) {
    let staging = Arc::new(Staging::new().unwrap());
    let mut module = loaded_with_state(library, 1024, &staging);
    for i in 0..20 {
        module.reload(library, &frame(i)).unwrap();
    }
    staging.wait_for_removals();
    let before = resources(staging.path());
    for i in 0..reloads {
        module.reload(library, &frame(i as u64)).unwrap();
        module.process(&frame(i as u64)).unwrap();
    }
    staging.wait_for_removals();
    let after = resources(staging.path());
    (before, after)
}

/// The host subscriber of the log rows: events at INFO and above are enabled, counted and
/// dropped; everything else is disabled for good (`Interest::never`), and the level hint
/// is INFO, as with `tracing_subscriber`'s `LevelFilter::INFO`.
#[derive(Debug)]
struct Discard;

/// Events [`Discard`] received.
static DISCARDED: AtomicU64 = AtomicU64::new(0);

impl Subscriber for Discard {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.enabled(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.is_event() && *meta.level() <= Level::INFO
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, _event: &Event<'_>) {
        // Single-threaded here: a load and a store, no read-modify-write.
        DISCARDED.store(DISCARDED.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// Per-event cost of `tracing` inside a loaded module, against the same event in the host.
#[derive(Debug, Clone)]
pub struct LogFigures {
    /// One disabled `debug!` in a loaded module, ns.
    pub disabled_module_ns: f64,
    /// One disabled `debug!` in the host, ns.
    pub disabled_host_ns: f64,
    /// One enabled `info!` in a loaded module, forwarded to the host's subscriber, ns.
    pub enabled_module_ns: f64,
    /// One enabled `info!` in the host, ns.
    pub enabled_host_ns: f64,
    /// Events per `process` call, disabled case.
    pub disabled_events: u64,
    /// Events per `process` call, enabled case.
    pub enabled_events: u64,
    /// `process` calls timed per figure, disabled case (the enabled case has a fifth).
    pub samples: usize,
}

/// Installs a subscriber that counts and drops events as the process's global one, at INFO.
/// For good: run the log rows after every other measurement.
pub fn install_discarding_subscriber() {
    grove::tracing::subscriber::set_global_default(Discard)
        .expect("no other global subscriber in the benchmark");
}

/// A module whose `process` emits `events` events at `level` (`debug` or `info`).
fn loaded_with_events(
    library: &Path,
    events: u64,
    level: &str,
    staging: &Arc<Staging>,
) -> LoadedModule {
    // SAFETY: the benchmark is single-threaded here; nothing else reads the environment.
    unsafe {
        std::env::set_var("GROVE_BENCH_LOG_EVENTS", events.to_string());
        std::env::set_var("GROVE_BENCH_LOG_LEVEL", level);
    }
    let module = LoadedModule::load_in(library, staging, &frame(0)).unwrap();
    // SAFETY: as above.
    unsafe {
        std::env::remove_var("GROVE_BENCH_LOG_EVENTS");
        std::env::remove_var("GROVE_BENCH_LOG_LEVEL");
    }
    module
}

/// Times `process` on loaded modules (`library`: the `logs` fixture) emitting no events,
/// `disabled_events` `debug!` events and `enabled_events` `info!` events, and the same
/// events emitted by the same function called in the host; the cost of an event is
/// (median with events - median without) / events. Needs [`install_discarding_subscriber`]
/// first.
pub fn log_events(library: &Path, samples: usize) -> LogFigures {
    const DISABLED_EVENTS: u64 = 10_000;
    const ENABLED_EVENTS: u64 = 1_000;
    let staging = Arc::new(Staging::new().unwrap());
    let cases = [(0, false), (DISABLED_EVENTS, false), (ENABLED_EVENTS, true)];
    let mut loaded = cases.map(|(events, info)| {
        loaded_with_events(
            library,
            events,
            if info { "info" } else { "debug" },
            &staging,
        )
    });
    let discarded_before = DISCARDED.load(Ordering::Relaxed);
    let mut calls = [[0u64; 3]; 2];
    let mut times: [[Vec<Duration>; 3]; 2] = Default::default();
    let enabled_samples = (samples / 5).max(3);
    for round in 0..samples + 3 {
        // The enabled case on a fifth of the rounds: it is a hundred times slower.
        let count = if round < enabled_samples + 3 { 3 } else { 2 };
        for (case, &(events, info)) in cases.iter().enumerate().take(count) {
            let started = Instant::now();
            loaded[case].process(&frame(round as u64)).unwrap();
            let took = started.elapsed();
            calls[0][case] += 1;
            if round >= 3 {
                times[0][case].push(took);
            }

            let (events, info) = std::hint::black_box((events, info));
            let started = Instant::now();
            bench_module::emit_events(events, info);
            let took = started.elapsed();
            calls[1][case] += 1;
            if round >= 3 {
                times[1][case].push(took);
            }
        }
    }
    // Every enabled event reached the host's subscriber, and no disabled one did.
    assert_eq!(
        DISCARDED.load(Ordering::Relaxed) - discarded_before,
        (calls[0][2] + calls[1][2]) * ENABLED_EVENTS,
        "the host subscriber saw every info! event and no debug! event"
    );
    let per_event = |times: &mut [Vec<Duration>; 3], case: usize, events: u64| {
        let base = median(&mut times[0]).as_nanos() as f64;
        let with = median(&mut times[case]).as_nanos() as f64;
        (with - base) / events as f64
    };
    let [module_times, host_times] = &mut times;
    LogFigures {
        disabled_module_ns: per_event(module_times, 1, DISABLED_EVENTS),
        disabled_host_ns: per_event(host_times, 1, DISABLED_EVENTS),
        enabled_module_ns: per_event(module_times, 2, ENABLED_EVENTS),
        enabled_host_ns: per_event(host_times, 2, ENABLED_EVENTS),
        disabled_events: DISABLED_EVENTS,
        enabled_events: ENABLED_EVENTS,
        samples,
    }
}

/// Counts the host's heap allocations, when the binary makes it its global allocator.
#[derive(Debug)]
pub struct CountingAllocator;

/// Allocations made through [`CountingAllocator`].
pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is only
// an atomic increment.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded: `ptr` came from `alloc` with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

/// Messaging between two loaded modules.
#[derive(Debug, Clone)]
pub struct MessagingFigures {
    /// Messages a second, publish to decode, through the engine.
    pub per_second: f64,
    /// Messages a second through a `std::sync::mpsc` channel between two threads.
    pub floor_per_second: f64,
    /// Host heap allocations per message in the measured frames.
    pub allocations_per_message: f64,
}

/// Publishes `per_frame` 32-byte messages a frame from the `sender` module to the
/// `receiver` module (subscribed to `patterns` other patterns too), for `frames` frames,
/// with every topic new when `unique_topics`; the best of three runs.
pub fn messaging(
    fixtures: &Fixtures,
    per_frame: u64,
    frames: u64,
    patterns: usize,
    unique_topics: bool,
) -> MessagingFigures {
    // SAFETY: the benchmark is single-threaded here; nothing else reads the environment.
    unsafe {
        std::env::set_var("GROVE_BENCH_MESSAGES", per_frame.to_string());
        std::env::set_var("GROVE_BENCH_PATTERNS", patterns.to_string());
        std::env::set_var(
            "GROVE_BENCH_TOPICS",
            if unique_topics { "unique" } else { "same" },
        );
    }
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .build()
        .unwrap();
    engine.load_module(&fixtures.sender).unwrap();
    engine.load_module(&fixtures.receiver).unwrap();
    // Warm up: queues and buffers at their working size.
    engine.run_frames(20);
    let mut best = f64::MAX;
    let mut allocations = f64::MAX;
    for _ in 0..3 {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let started = Instant::now();
        engine.run_frames(frames);
        let took = started.elapsed();
        let allocated = ALLOCATIONS.load(Ordering::Relaxed) - before;
        best = best.min(took.as_secs_f64());
        allocations = allocations.min(allocated as f64 / (per_frame * frames) as f64);
    }
    #[derive(Deserialize)]
    struct Received {
        messages: u64,
    }
    let received: Received = engine.module_state("receiver").unwrap();
    assert_eq!(
        received.messages,
        per_frame * (frames * 3 + 19),
        "every message arrived"
    );
    engine.shutdown().unwrap();
    MessagingFigures {
        per_second: (per_frame * frames) as f64 / best,
        floor_per_second: channel_floor(per_frame * frames),
        allocations_per_message: allocations,
    }
}

/// Messages a second moving `n` of the same 32-byte struct through a `std::sync::mpsc`
/// channel from one thread to another; the best of three.
fn channel_floor(n: u64) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let (tx, rx) = std::sync::mpsc::channel::<bench_module::Sample>();
        let started = Instant::now();
        let receiver = std::thread::spawn(move || {
            let mut sum = 0u64;
            while let Ok(sample) = rx.recv() {
                sum = sum.wrapping_add(sample.seq);
            }
            sum
        });
        for seq in 0..n {
            tx.send(bench_module::Sample {
                seq,
                x: 1.5,
                y: -2.5,
                z: 0,
            })
            .unwrap();
        }
        drop(tx);
        std::hint::black_box(receiver.join().unwrap());
        best = best.min(started.elapsed().as_secs_f64());
    }
    n as f64 / best
}

/// What a snapshot costs the frame it is taken in, for one state size.
#[derive(Debug, Clone)]
pub struct SnapshotFigures {
    /// Median time on the frame thread: the module saves its state, the engine frames it
    /// and hands it to the writer thread.
    pub frame_cost: Duration,
    /// Median floor: copying a buffer of the state's size.
    pub floor: Duration,
}

/// The frame-thread cost of a snapshot of the benchmark module holding `state_bytes`.
pub fn snapshot_cost(library: &Path, state_bytes: usize, samples: usize) -> SnapshotFigures {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: the benchmark is single-threaded here; nothing else reads the environment.
    unsafe { std::env::set_var("GROVE_BENCH_STATE_BYTES", state_bytes.to_string()) };
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .state_dir(dir.path())
        .snapshot_every(Duration::from_secs(3600))
        .build()
        .unwrap();
    engine.load_module(library).unwrap();
    // SAFETY: as above.
    unsafe { std::env::remove_var("GROVE_BENCH_STATE_BYTES") };
    let source = vec![7u8; state_bytes.max(1)];
    let mut costs = Vec::with_capacity(samples);
    let mut floors = Vec::with_capacity(samples);
    for _ in 0..samples {
        costs.push(grove_runtime::bench_support::snapshot_frame_cost(
            &mut engine,
        ));
        let started = Instant::now();
        std::hint::black_box(source.clone());
        floors.push(started.elapsed());
    }
    engine.shutdown().unwrap();
    SnapshotFigures {
        frame_cost: median(&mut costs),
        floor: median(&mut floors),
    }
}
