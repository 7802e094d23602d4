//! Module systems on real modules: every strategy runs each module once per frame in
//! lockstep, reloads a module between two frames with its state, and contains a module's
//! panic on whatever thread it runs; strategies mix in one engine.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use grove::{Context, Module};
use grove_runtime::{Engine, EngineEvent, StaticModule, Strategy, Unmapped};

use crate::support::{CounterState, counter, scratch_dir};

/// What the probes of one engine share.
#[derive(Debug, Default, Clone)]
struct Shared {
    /// `process` calls finished, by every probe.
    finished: Arc<AtomicU64>,
    /// Frames in which a probe saw another probe out of step.
    out_of_step: Arc<Mutex<Vec<String>>>,
    /// Threads the probes ran on.
    threads: Arc<Mutex<HashSet<ThreadId>>>,
}

/// Counts its frames, and checks that it runs in lockstep with the other `of` probes: when
/// it starts frame `n`, every probe has finished frame `n - 1` and none has finished `n`
/// twice. Probes are added before the first frame.
struct Probe {
    count: Arc<AtomicU64>,
    shared: Shared,
    of: u64,
}

impl Module for Probe {
    fn process(&mut self, ctx: &mut Context) {
        let n = ctx.frame();
        let finished = self.shared.finished.load(Ordering::SeqCst);
        if finished < n * self.of || finished >= (n + 1) * self.of {
            self.shared.out_of_step.lock().unwrap().push(format!(
                "frame {n}: {finished} calls finished, {} probes",
                self.of
            ));
        }
        self.shared
            .threads
            .lock()
            .unwrap()
            .insert(std::thread::current().id());
        std::thread::yield_now();
        self.count.fetch_add(1, Ordering::SeqCst);
        self.shared.finished.fetch_add(1, Ordering::SeqCst);
    }
}

/// Adds `of` probes named `probe-0`... under `strategies` (cycled; `None` is the engine's
/// default); returns their frame counts.
fn add_probes(
    engine: &mut Engine,
    shared: &Shared,
    of: u64,
    strategies: &[Option<Strategy>],
) -> Vec<Arc<AtomicU64>> {
    (0..of as usize)
        .map(|i| {
            let count = Arc::new(AtomicU64::new(0));
            let probe = Probe {
                count: Arc::clone(&count),
                shared: shared.clone(),
                of,
            };
            let name = format!("probe-{i}");
            match strategies[i % strategies.len()] {
                Some(strategy) => engine
                    .add_linked(StaticModule::stateless(name, probe), Some(strategy))
                    .unwrap(),
                None => engine
                    .add_linked(StaticModule::stateless(name, probe), None)
                    .unwrap(),
            }
            count
        })
        .collect()
}

/// An unpaced engine that reloads only when told to.
fn unpaced(default: Strategy) -> Engine {
    Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .strategy(default)
        .build()
        .unwrap()
}

/// A private copy of the v1 counter at `dir/libcounter.so`.
fn counter_copy(dir: &Path) -> PathBuf {
    let path = dir.join("libcounter.so");
    std::fs::copy(counter("v1"), &path).unwrap();
    path
}

/// Puts `variant`'s library in place of `path`, as a build does (a rename over it).
fn replace(path: &Path, variant: &str) {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::hard_link(counter(variant), &tmp).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn state(engine: &mut Engine) -> CounterState {
    engine.module_state("counter").unwrap()
}

fn panics(events: &Receiver<EngineEvent>) -> Vec<(String, u64)> {
    events
        .try_iter()
        .filter_map(|e| match e {
            EngineEvent::Panicked { module, frame, .. } => Some((module, frame)),
            _ => None,
        })
        .collect()
}

fn counts(counts: &[Arc<AtomicU64>]) -> Vec<u64> {
    counts.iter().map(|c| c.load(Ordering::SeqCst)).collect()
}

#[test]
fn every_strategy_keeps_modules_in_lockstep() {
    const FRAMES: u64 = 50;
    const PROBES: u64 = 4;
    let mixed = [
        None,
        Some(Strategy::Threaded),
        Some(Strategy::Pool),
        Some(Strategy::Sequential),
    ];
    for (default, strategies) in [
        (Strategy::Sequential, &[None][..]),
        (Strategy::Threaded, &[None][..]),
        (Strategy::Pool, &[None][..]),
        (Strategy::Sequential, &mixed[..]),
        (Strategy::Pool, &mixed[..]),
    ] {
        let what = format!("default {default}, modules {strategies:?}");
        let mut engine = unpaced(default);
        let events = engine.subscribe();
        engine.load_module(counter("v1")).unwrap();
        let shared = Shared::default();
        let probes = add_probes(&mut engine, &shared, PROBES, strategies);
        engine.run_frames(FRAMES);

        assert_eq!(
            shared.out_of_step.lock().unwrap().as_slice(),
            &[] as &[String],
            "{what}"
        );
        assert_eq!(counts(&probes), [FRAMES; PROBES as usize], "{what}");
        assert_eq!(state(&mut engine).count, FRAMES, "{what}");
        let stats = engine.stats();
        assert!(
            stats.modules.iter().all(|m| m.frames == FRAMES),
            "{what}: {stats:?}"
        );
        assert_eq!(panics(&events), [], "{what}");
        let threads = shared.threads.lock().unwrap().len();
        if default == Strategy::Threaded {
            assert_eq!(threads, PROBES as usize, "{what}: a thread per probe");
        }
        if default == Strategy::Sequential && strategies.len() == 1 {
            assert_eq!(threads, 1, "{what}: all on the engine's thread");
        }
    }
}

#[test]
fn per_module_strategies_are_reported_and_can_change_between_frames() {
    let mut engine = unpaced(Strategy::Sequential);
    let shared = Shared::default();
    let first = add_probes(&mut engine, &shared, 1, &[Some(Strategy::Threaded)]);
    engine
        .load_module_with(counter("v1"), Strategy::Pool)
        .unwrap();
    assert_eq!(engine.system_name(), "sequential");
    assert_eq!(engine.module_system("probe-0").unwrap(), "threaded");
    assert_eq!(engine.module_system("counter").unwrap(), "pool");
    engine.run_frames(3);

    // Added between frames: runs from the next frame on.
    let late = Arc::new(AtomicU64::new(0));
    engine
        .add_linked(
            StaticModule::stateless(
                "late",
                Probe {
                    count: Arc::clone(&late),
                    shared: Shared::default(),
                    of: 1,
                },
            ),
            Some(Strategy::Threaded),
        )
        .unwrap();
    engine.run_frames(3);
    engine.set_strategy("probe-0", Strategy::Pool).unwrap();
    engine
        .set_strategy("counter", Strategy::Sequential)
        .unwrap();
    assert_eq!(engine.module_system("probe-0").unwrap(), "pool");
    assert_eq!(engine.module_system("counter").unwrap(), "sequential");
    engine.run_frames(3);

    assert_eq!(counts(&first), [9]);
    assert_eq!(late.load(Ordering::SeqCst), 6);
    let s = state(&mut engine);
    assert_eq!((s.count, s.total), (9, 9));
    assert!(engine.set_strategy("nobody", Strategy::Pool).is_err());
}

/// Five frames of v1, a reload to v2 between two frames, five frames of v2: every frame
/// counted, v2 from exactly the frame after the swap.
fn check_reload_keeps_state(engine: &mut Engine, path: &Path, what: &str) {
    engine.run_frames(5);
    replace(path, "v2");
    let reloaded = engine.reload("counter").unwrap();
    assert_eq!(reloaded.generation, 2, "{what}");
    assert_eq!(
        reloaded.old_library,
        Unmapped::Yes,
        "{what}: nothing pinned the old library"
    );
    engine.run_frames(5);
    let s = state(engine);
    assert_eq!(s.count, 10, "{what}: state kept");
    assert_eq!(
        s.total,
        5 + 2 * 5,
        "{what}: v2 ran every frame after the swap"
    );
    assert_eq!(s.name, "v2", "{what}");
}

#[test]
fn reload_under_threaded_and_pool_keeps_the_state() {
    for strategy in [Strategy::Threaded, Strategy::Pool] {
        // As the engine's strategy, next to a module of the same system.
        let dir = scratch_dir();
        let path = counter_copy(&dir);
        let mut engine = unpaced(strategy);
        engine.load_module(&path).unwrap();
        let shared = Shared::default();
        let probes = add_probes(&mut engine, &shared, 1, &[None]);
        check_reload_keeps_state(&mut engine, &path, &format!("engine {strategy}"));
        assert_eq!(counts(&probes), [10]);
        drop(engine);

        // As the module's own strategy, in a sequential engine.
        let path = dir.join("libcounter-own.so");
        std::fs::copy(counter("v1"), &path).unwrap();
        let mut engine = unpaced(Strategy::Sequential);
        engine.load_module_with(&path, strategy).unwrap();
        assert_eq!(engine.module_system("counter").unwrap(), strategy.name());
        check_reload_keeps_state(&mut engine, &path, &format!("module {strategy}"));
        drop(engine);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_hundred_reloads_while_other_modules_keep_running() {
    const CYCLES: u64 = 100;
    const FRAMES_PER_CYCLE: u64 = 3;
    let dir = scratch_dir();
    let path = counter_copy(&dir);
    let mut engine = unpaced(Strategy::Pool);
    let events = engine.subscribe();
    engine.load_module_with(&path, Strategy::Threaded).unwrap();
    let shared = Shared::default();
    let probes = add_probes(
        &mut engine,
        &shared,
        3,
        &[None, Some(Strategy::Threaded), Some(Strategy::Sequential)],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut expected_total = 0;
    let mut step = 1; // v1 adds 1 a frame, v2 adds 2
    for cycle in 0..CYCLES {
        assert!(Instant::now() < deadline, "timed out at cycle {cycle}");
        engine.run_frames(FRAMES_PER_CYCLE);
        expected_total += FRAMES_PER_CYCLE * step;
        let (variant, next_step) = if step == 1 { ("v2", 2) } else { ("v1", 1) };
        replace(&path, variant);
        engine.reload("counter").unwrap();
        step = next_step;
    }
    engine.run_frames(FRAMES_PER_CYCLE);
    expected_total += FRAMES_PER_CYCLE * step;

    let frames = (CYCLES + 1) * FRAMES_PER_CYCLE;
    let s = state(&mut engine);
    assert_eq!(engine.generation("counter").unwrap(), CYCLES + 1);
    assert_eq!(s.count, frames, "no frame lost across {CYCLES} reloads");
    assert_eq!(
        s.total, expected_total,
        "each version ran exactly between its swaps"
    );
    assert_eq!(counts(&probes), [frames; 3], "the others ran every frame");
    assert_eq!(
        shared.out_of_step.lock().unwrap().as_slice(),
        &[] as &[String]
    );
    let reloads: Vec<Unmapped> = events
        .try_iter()
        .filter_map(|e| match e {
            EngineEvent::Reloaded(r) => Some(r.old_library),
            EngineEvent::Panicked { error, .. } => panic!("{error}"),
            _ => None,
        })
        .collect();
    assert_eq!(reloads.len(), CYCLES as usize);
    assert!(
        reloads.iter().all(|u| *u == Unmapped::Yes),
        "every old library left memory: {reloads:?}"
    );
    drop(engine);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Panics in frame 3, after noting the thread it runs on.
struct Boom {
    thread: Arc<Mutex<Option<ThreadId>>>,
}

impl Module for Boom {
    fn process(&mut self, ctx: &mut Context) {
        if ctx.frame() == 3 {
            *self.thread.lock().unwrap() = Some(std::thread::current().id());
            panic!("boom at frame 3");
        }
    }
}

#[test]
fn a_panicking_module_on_a_worker_thread_is_contained() {
    for strategy in [Strategy::Threaded, Strategy::Pool] {
        let mut engine = unpaced(strategy);
        let events = engine.subscribe();
        engine.load_module(counter("panic_process")).unwrap();
        let boom_thread = Arc::new(Mutex::new(None));
        engine
            .add_linked(
                StaticModule::stateless(
                    "boom",
                    Boom {
                        thread: Arc::clone(&boom_thread),
                    },
                ),
                None,
            )
            .unwrap();
        engine
            .add_static("static-counter", counter::Counter::default())
            .unwrap();
        engine.run_frames(10);

        let mut seen = panics(&events);
        seen.sort();
        assert_eq!(
            seen,
            [("boom".to_owned(), 3), ("counter".to_owned(), 3)],
            "{strategy}: each panic reported once, in its frame"
        );
        let panicked_on = boom_thread.lock().unwrap().expect("boom ran frame 3");
        assert_ne!(
            panicked_on,
            std::thread::current().id(),
            "{strategy}: the panic happened on a worker thread"
        );
        let stats = engine.stats();
        assert_eq!(stats.frames, 10);
        assert!(stats.modules[0].faulted && stats.modules[1].faulted);
        assert_eq!(
            stats.modules[2].frames, 10,
            "{strategy}: the other module ran"
        );
        assert!(!stats.modules[2].faulted);
    }
}

#[test]
fn a_watched_library_reloads_at_a_frame_boundary_under_threaded() {
    let dir = scratch_dir();
    let path = counter_copy(&dir);
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .strategy(Strategy::Threaded)
        .build()
        .unwrap();
    engine.load_module(&path).unwrap();
    let shared = Shared::default();
    let probes = add_probes(&mut engine, &shared, 2, &[None, Some(Strategy::Pool)]);
    engine.run_frames(5);
    replace(&path, "v2");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut frames = 5;
    while engine.generation("counter").unwrap() == 1 {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the reload"
        );
        engine.step();
        frames += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    engine.run_frames(5);
    frames += 5;
    let s = state(&mut engine);
    assert_eq!(s.count, frames, "every frame counted across the reload");
    assert!(s.total > s.count && s.name == "v2", "{s:?}");
    assert_eq!(counts(&probes), [frames; 2]);
    drop(engine);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn module_logs_reach_the_callers_subscriber_from_worker_threads() {
    use tracing_subscriber::layer::SubscriberExt;

    for strategy in Strategy::ALL {
        let capture = crate::logs::Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::with_default(subscriber, || {
            let mut engine = unpaced(strategy);
            engine.load_module(counter("v1")).unwrap();
            engine.run_frames(4);
        });
        let ticks = capture.ticks();
        assert_eq!(ticks.len(), 4, "{strategy}: every tick logged");
        assert_eq!(ticks[3].fields["count"], "u64:4", "{strategy}");
    }
}
