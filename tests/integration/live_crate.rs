//! `Engine::watch_crate` on a real module crate, edited while the engine runs: a broken
//! edit keeps the running version (and its state), the fix reloads with the state kept.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use grove_runtime::{BuildOptions, Engine, EngineEvent, Error};

use crate::support::{fixture_target_dir, scratch_dir, workspace_root};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct LiveState {
    count: u64,
    total: u64,
}

fn module_source(step: &str) -> String {
    format!(
        "use grove::prelude::*;\n\n\
         #[grove::module]\n#[derive(Default)]\npub struct Live {{\n    count: u64,\n    total: u64,\n}}\n\n\
         impl Module for Live {{\n    fn process(&mut self, _ctx: &mut Context) {{\n        \
         self.count += 1;\n        self.total += {step};\n    }}\n}}\n"
    )
}

/// A standalone module crate depending on this checkout's grove-sdk, pinned to the
/// workspace's lock file so it builds from the same dependency versions.
fn live_crate() -> PathBuf {
    let dir = scratch_dir().join("live-module");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let sdk = workspace_root().join("grove-sdk");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"live-module\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n\
             [dependencies]\ngrove-sdk = {{ path = {:?} }}\n\n[workspace]\n",
            sdk.display().to_string()
        ),
    )
    .unwrap();
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), module_source("1")).unwrap();
    dir
}

/// Steps until `wanted` picks an event, or fails after `limit` (builds take seconds).
fn step_until_event<T>(
    engine: &mut Engine,
    events: &Receiver<EngineEvent>,
    limit: Duration,
    mut wanted: impl FnMut(&EngineEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        engine.step();
        for event in events.try_iter() {
            if let EngineEvent::ReloadRefused { error, .. } = &event {
                panic!("unexpected refused reload: {error}");
            }
            if let Some(found) = wanted(&event) {
                return found;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for the build");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn edit(dir: &Path, source: &str) {
    // Written to a temporary file and renamed, as editors that save atomically do.
    let tmp = dir.join("src/lib.rs.tmp");
    std::fs::write(&tmp, source).unwrap();
    std::fs::rename(tmp, dir.join("src/lib.rs")).unwrap();
}

#[test]
fn a_failed_build_keeps_the_running_version_and_the_fix_reloads_with_state() {
    let dir = live_crate();
    let mut engine = Engine::builder().target_fps(0.0).build().unwrap();
    let events = engine.subscribe();
    let options = BuildOptions {
        // The fixtures' target dir: grove-sdk and its dependencies are built there already.
        target_dir: Some(fixture_target_dir()),
        ..BuildOptions::default()
    };
    let name = engine.watch_crate_with(&dir, options).unwrap();
    assert_eq!(name, "live");
    engine.run_frames(10);

    edit(&dir, &module_source("1 +")); // a syntax error
    let error = step_until_event(
        &mut engine,
        &events,
        Duration::from_secs(300),
        |e| match e {
            EngineEvent::BuildFailed { error, .. } => Some(error.clone()),
            _ => None,
        },
    );
    let message = error.to_string();
    assert!(matches!(error, Error::Build { .. }), "{error:?}");
    assert!(
        message.contains("live-module") && message.contains("src/lib.rs"),
        "{message}"
    );
    let before: LiveState = engine.module_state(&name).unwrap();
    engine.run_frames(5);
    let after: LiveState = engine.module_state(&name).unwrap();
    assert_eq!(
        engine.generation(&name).unwrap(),
        1,
        "the running version stays"
    );
    assert_eq!(after.count, before.count + 5, "and keeps running");

    edit(&dir, &module_source("2")); // the fix, with new code
    step_until_event(
        &mut engine,
        &events,
        Duration::from_secs(300),
        |e| match e {
            EngineEvent::Reloaded(r) => Some(r.generation),
            _ => None,
        },
    );
    let frames_so_far = engine.stats().frames;
    engine.run_frames(3);
    let state: LiveState = engine.module_state(&name).unwrap();
    assert_eq!(
        state.count,
        frames_so_far + 3,
        "every frame counted across the failed build"
    );
    assert!(
        state.total > state.count,
        "the fixed version (step 2) runs: {state:?}"
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn without_file_watching_a_rebuilt_crate_reloads_from_the_build() {
    let dir = live_crate();
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .build()
        .unwrap();
    let events = engine.subscribe();
    let options = BuildOptions {
        target_dir: Some(fixture_target_dir()),
        ..BuildOptions::default()
    };
    let name = engine.watch_crate_with(&dir, options).unwrap();
    engine.run_frames(3);
    edit(&dir, &module_source("2"));
    let generation = step_until_event(
        &mut engine,
        &events,
        Duration::from_secs(300),
        |e| match e {
            EngineEvent::Reloaded(r) => Some(r.generation),
            _ => None,
        },
    );
    assert_eq!(generation, 2);
    engine.run_frames(2);
    let state: LiveState = engine.module_state(&name).unwrap();
    assert!(
        state.total > state.count,
        "the rebuilt version runs: {state:?}"
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}
