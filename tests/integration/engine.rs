//! The engine driving real reloads: the watcher notices each way a library file gets
//! replaced, exactly once, never takes a partial file, and the new code runs on the frame
//! that follows; a GroveEngine-style run keeps every frame and the state.

use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use grove_runtime::{Engine, EngineEvent};

use crate::support::{CounterState, counter, engine_on_copy, scratch_dir, unpaced_engine};

/// Steps `engine` until `done` says so, or fails after a few seconds (the watcher works
/// on its own thread; nothing here asserts how fast).
fn step_until(engine: &mut Engine, mut done: impl FnMut(&mut Engine) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(engine) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the engine"
        );
        engine.step();
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn reloads(events: &Receiver<EngineEvent>) -> (usize, usize) {
    let (mut ok, mut refused) = (0, 0);
    for event in events.try_iter() {
        match event {
            EngineEvent::Reloaded(_) => ok += 1,
            EngineEvent::ReloadRefused { error, .. } => {
                eprintln!("refused: {error}");
                refused += 1
            }
            _ => {}
        }
    }
    (ok, refused)
}

fn state(engine: &mut Engine) -> CounterState {
    engine.module_state("counter").unwrap()
}

/// Replaces the library, then checks: one reload, state kept, v2's code ran in the frame
/// that applied it.
fn check_replacement(replace: impl FnOnce(&Path, &[u8])) {
    let dir = scratch_dir();
    let (mut engine, events, path) = engine_on_copy(&dir, 0.0);
    engine.run_frames(5);
    assert_eq!(state(&mut engine).total, 5);

    replace(&path, &std::fs::read(counter("v2")).unwrap());
    let mut frames_after = 0;
    step_until(&mut engine, |e| {
        frames_after += 1;
        e.generation("counter").unwrap() == 2
    });
    let s = state(&mut engine);
    let frames_before_reload = frames_after - 2; // the first check runs before any step
    assert_eq!(
        s.count,
        5 + frames_before_reload + 1,
        "every frame counted, state kept"
    );
    assert_eq!(
        s.total,
        5 + frames_before_reload + 2,
        "the frame that applied the reload ran v2 (step 2)"
    );
    // Let the watcher see any trailing events of the same write.
    for _ in 0..50 {
        engine.step();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        reloads(&events),
        (1, 0),
        "exactly one reload, nothing refused"
    );
    assert_eq!(engine.generation("counter").unwrap(), 2);
    drop(engine);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn rename_over_reloads_once() {
    check_replacement(|path, bytes| {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    });
}

#[test]
fn in_place_rewrite_reloads_once() {
    check_replacement(|path, bytes| std::fs::write(path, bytes).unwrap());
}

#[test]
fn delete_and_create_reloads_once() {
    check_replacement(|path, bytes| {
        std::fs::remove_file(path).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(path, bytes).unwrap();
    });
}

#[test]
fn a_file_written_in_two_halves_is_not_loaded_until_complete() {
    use std::io::Write;

    let dir = scratch_dir();
    let (mut engine, events, path) = engine_on_copy(&dir, 0.0);
    let bytes = std::fs::read(counter("v2")).unwrap();
    let (first, second) = bytes.split_at(bytes.len() / 2);
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(first).unwrap();
    file.flush().unwrap();
    // Half a library on disk: frames go on, nothing is loaded or refused.
    for _ in 0..150 {
        engine.step();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(engine.generation("counter").unwrap(), 1);
    assert_eq!(reloads(&events), (0, 0), "a partial file is never tried");
    file.write_all(second).unwrap();
    drop(file);
    step_until(&mut engine, |e| e.generation("counter").unwrap() == 2);
    assert_eq!(reloads(&events), (1, 0));
    drop(engine);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_refused_new_file_keeps_the_old_version_running() {
    let dir = scratch_dir();
    let (mut engine, events, path) = engine_on_copy(&dir, 0.0);
    engine.run_frames(3);
    let tmp = path.with_extension("tmp");
    std::fs::copy(counter("incompatible"), &tmp).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let mut refused = 0;
    step_until(&mut engine, |_| {
        refused += reloads(&events).1;
        refused == 1
    });
    engine.run_frames(3);
    let s = state(&mut engine);
    assert_eq!(engine.generation("counter").unwrap(), 1);
    assert_eq!(s.name, "v1", "old code still running");
    assert!(s.count >= 6, "state kept and still counting: {s:?}");
    assert_eq!(engine.stats().refused_reloads, 1);
    drop(engine);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_panicking_module_is_skipped_while_the_others_run() {
    let mut engine = unpaced_engine();
    let events = engine.subscribe();
    engine.load_module(counter("panic_process")).unwrap();
    engine
        .add_static("static-counter", counter::Counter::default())
        .unwrap();
    engine.run_frames(10);
    let panics: Vec<_> = events
        .try_iter()
        .filter_map(|e| match e {
            EngineEvent::Panicked { module, frame, .. } => Some((module, frame)),
            _ => None,
        })
        .collect();
    assert_eq!(
        panics,
        [("counter".to_owned(), 3)],
        "one panic, reported once"
    );
    let stats = engine.stats();
    assert_eq!(stats.frames, 10);
    assert!(stats.modules[0].faulted);
    assert_eq!(
        stats.modules[1].frames, 10,
        "the other module ran every frame"
    );
}

/// GroveEngine's test engine: 60 FPS, 300 frames, a rebuild half-way.
#[test]
fn sixty_fps_run_with_a_rebuild_midway_keeps_every_frame_and_the_state() {
    let dir = scratch_dir();
    let (mut engine, events, path) = engine_on_copy(&dir, 60.0);
    engine.run_frames(150);
    let tmp = dir.join("libcounter.tmp");
    std::fs::copy(counter("v2"), &tmp).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    engine.run_frames(150);
    let s = state(&mut engine);
    let stats = engine.stats();
    assert_eq!(stats.frames, 300, "every frame ran");
    assert_eq!(
        stats.modules[0].frames, 300,
        "the module ran in every frame"
    );
    assert_eq!(s.count, 300, "no frame's state lost across the reload");
    assert_eq!(reloads(&events), (1, 0));
    // v1 adds 1 per frame, v2 adds 2: total - count is the number of frames v2 ran.
    let v2_frames = s.total - s.count;
    assert!(
        (1..=150).contains(&v2_frames),
        "v2 ran after the reload, and only then: {s:?}"
    );
    drop(engine);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `run()` stops on SIGTERM after the frame in progress, and every module's shutdown runs.
#[test]
fn sigterm_stops_run_gracefully() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    struct Terminator {
        frames: Arc<AtomicU64>,
        shut_down: Arc<AtomicBool>,
    }
    impl grove::Module for Terminator {
        fn process(&mut self, _ctx: &mut grove::Context) {
            if self.frames.fetch_add(1, Ordering::SeqCst) == 4 {
                // SAFETY: raise only sends a signal to this process; grove's handler
                // for SIGTERM is installed.
                assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
            }
        }
        fn shutdown(&mut self, _ctx: &mut grove::Context) {
            self.shut_down.store(true, Ordering::SeqCst);
        }
    }

    let frames = Arc::new(AtomicU64::new(0));
    let shut_down = Arc::new(AtomicBool::new(false));
    let mut engine = unpaced_engine();
    engine
        .add_linked(
            grove_runtime::StaticModule::stateless(
                "terminator",
                Terminator {
                    frames: Arc::clone(&frames),
                    shut_down: Arc::clone(&shut_down),
                },
            ),
            None,
        )
        .unwrap();
    engine
        .add_static("counter-static", counter::Counter::default())
        .unwrap();
    // Only the signal handler sets the stop flag, so `run` returning proves it ran.
    engine.run().unwrap();
    assert!(frames.load(Ordering::SeqCst) >= 5);
    assert!(shut_down.load(Ordering::SeqCst), "shutdown ran");
    assert!(
        engine.module_names().is_empty(),
        "every module was shut down and unloaded"
    );
}

#[test]
fn a_host_sets_a_loaded_modules_state_and_a_state_it_cannot_read_changes_nothing() {
    #[derive(serde::Serialize)]
    struct Set {
        count: u64,
        total: u32,
        name: String,
    }
    #[derive(serde::Serialize)]
    struct Wrong {
        count: &'static str,
    }
    let mut engine = crate::support::unpaced_engine();
    engine.load_module(crate::support::counter("v1")).unwrap();
    engine.run_frames(3);
    engine
        .set_module_state(
            "counter",
            &Set {
                count: 100,
                total: 7,
                name: "set".into(),
            },
        )
        .unwrap();
    engine.run_frames(1);
    let state: crate::support::CounterState = engine.module_state("counter").unwrap();
    assert_eq!((state.count, state.total), (101, 8));
    let error = engine
        .set_module_state("counter", &Wrong { count: "many" })
        .unwrap_err();
    assert!(error.to_string().contains("count"), "{error}");
    let state: crate::support::CounterState = engine.module_state("counter").unwrap();
    assert_eq!(state.count, 101, "the state it had");
}

#[test]
fn a_module_asked_for_after_the_engine_stopped_is_said_to_be_shut_down() {
    let mut engine = crate::support::unpaced_engine();
    let name = engine.load_module(counter("v1")).unwrap();
    engine.run_frames(3);
    engine.shutdown().unwrap();
    let err = engine.module_state::<CounterState>(&name).unwrap_err();
    assert!(
        matches!(&err, grove_runtime::Error::ShutDown { module } if *module == name),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("was shut down when the engine stopped")
    );
    let err = engine.module_state::<CounterState>("nobody").unwrap_err();
    assert_eq!(err.to_string(), "no module named `nobody` (none is loaded)");
}
