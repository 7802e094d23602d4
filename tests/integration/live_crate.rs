//! `Engine::watch_crate` on a real module crate, edited while the engine runs: a broken
//! edit keeps the running version (and its state), the fix reloads with the state kept.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use grove_runtime::{BuildOptions, Engine, EngineEvent, Error};

use crate::support::{fixture_target_dir, run_child, scratch_dir, workspace_root};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct LiveState {
    count: u64,
    total: u64,
}

pub(crate) fn module_source(step: &str) -> String {
    format!(
        "use grove::prelude::*;\n\n\
         #[grove::module]\n#[derive(Default)]\npub struct Live {{\n    count: u64,\n    total: u64,\n}}\n\n\
         impl Module for Live {{\n    fn process(&mut self, _ctx: &mut Context) {{\n        \
         self.count += 1;\n        self.total += {step};\n    }}\n}}\n"
    )
}

/// A standalone module crate, package `package`, depending on this checkout's grove-sdk,
/// pinned to the workspace's lock file so it builds from the same dependency versions. Its
/// library lands in the fixtures' shared target directory under its package's name: tests
/// that run at the same time each use their own.
///
/// The package name gets this test's own suffix: cargo keeps one fingerprint per package
/// name and version in a target directory, whatever the crate's path, so a crate of the
/// same name left by an earlier run would have its files checked instead, and an edit here
/// would never rebuild.
pub(crate) fn live_crate(package: &str) -> PathBuf {
    let dir = scratch_dir();
    let package = format!("{package}-{}", dir.file_name().unwrap().to_string_lossy());
    let dir = dir.join(&package);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let sdk = workspace_root().join("grove-sdk");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
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

pub(crate) fn edit(dir: &Path, source: &str) {
    // Written to a temporary file and renamed, as editors that save atomically do.
    let tmp = dir.join("src/lib.rs.tmp");
    std::fs::write(&tmp, source).unwrap();
    std::fs::rename(tmp, dir.join("src/lib.rs")).unwrap();
}

#[test]
fn a_failed_build_keeps_the_running_version_and_the_fix_reloads_with_state() {
    let dir = live_crate("live-module");
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
    let dir = live_crate("rebuilt-module");
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

/// A workspace of two crates: the module, and a helper crate it depends on by path that
/// holds its logic (`helper::step`). The helper's build script takes two seconds, so the
/// first build lasts long enough for cargo to count its progress.
fn split_workspace() -> PathBuf {
    let root = scratch_dir().join("split");
    let sdk = workspace_root().join("grove-sdk");
    let files = [
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"module\", \"helper\"]\nresolver = \"3\"\n".to_owned(),
        ),
        (
            "module/Cargo.toml",
            format!(
                "[package]\nname = \"live-split\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
                 [lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n\
                 [dependencies]\ngrove-sdk = {{ path = {:?} }}\nhelper = {{ path = \"../helper\" }}\n",
                sdk.display().to_string()
            ),
        ),
        (
            "module/src/lib.rs",
            "use grove::prelude::*;\n\n\
             #[grove::module]\n#[derive(Default)]\npub struct Split {\n    count: u64,\n    total: u64,\n}\n\n\
             impl Module for Split {\n    fn process(&mut self, _ctx: &mut Context) {\n        \
             self.count += 1;\n        self.total += helper::step();\n    }\n}\n"
                .to_owned(),
        ),
        (
            "helper/Cargo.toml",
            "[package]\nname = \"helper\"\nversion = \"0.1.0\"\nedition = \"2024\"\n".to_owned(),
        ),
        (
            "helper/build.rs",
            "fn main() {\n    println!(\"cargo::rerun-if-changed=build.rs\");\n    \
             std::thread::sleep(std::time::Duration::from_secs(2));\n}\n"
                .to_owned(),
        ),
        ("helper/src/lib.rs", helper_source("1")),
    ];
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::copy(workspace_root().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    root
}

fn helper_source(step: &str) -> String {
    format!("pub fn step() -> u64 {{\n    {step}\n}}\n")
}

#[test]
#[ignore = "run in a child process by the test of the same name without `child_`"]
fn child_a_path_dependency_is_watched_and_every_build_ends_in_an_event() {
    let root = split_workspace();
    // No tracing subscriber: the engine prints its own lines, which the parent reads.
    let mut engine = Engine::builder().target_fps(0.0).build().unwrap();
    let events = engine.subscribe();
    let options = BuildOptions {
        target_dir: Some(fixture_target_dir()),
        ..BuildOptions::default()
    };
    let name = engine
        .watch_crate_with(root.join("module"), options)
        .unwrap();
    assert_eq!(name, "split");
    engine.run_frames(3);

    // An edit of the helper crate alone rebuilds and reloads the module: the build's end
    // and the reload arrive, in either order.
    let helper = root.join("helper");
    edit(&helper, &helper_source("10"));
    let limit = Duration::from_secs(300);
    let (mut built, mut reloaded) = (None, false);
    step_until_event(&mut engine, &events, limit, |e| {
        match e {
            EngineEvent::BuildFinished {
                library_changed, ..
            } => built = Some(*library_changed),
            EngineEvent::Reloaded(r) => reloaded = r.generation == 2,
            _ => {}
        }
        (built.is_some() && reloaded).then_some(())
    });
    assert_eq!(built, Some(true), "the library changed");
    let before: LiveState = engine.module_state(&name).unwrap();
    engine.run_frames(2);
    let after: LiveState = engine.module_state(&name).unwrap();
    assert_eq!(
        after.total - before.total,
        20,
        "the new helper runs: {before:?} then {after:?}"
    );

    // A build that changes nothing says so.
    let manifest = root.join("module/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text + "# a comment\n").unwrap();
    let changed = step_until_event(&mut engine, &events, limit, |e| match e {
        EngineEvent::BuildFinished {
            library_changed, ..
        } => Some(*library_changed),
        _ => None,
    });
    assert!(
        !changed,
        "a comment in Cargo.toml leaves the library as it was"
    );

    // A compile error in the helper is reported, and the running version keeps going.
    edit(&helper, &helper_source("10 +"));
    step_until_event(&mut engine, &events, limit, |e| match e {
        EngineEvent::BuildFailed { .. } => Some(()),
        _ => None,
    });
    // And a panic in the helper's new code is contained.
    edit(
        &helper,
        "pub fn step() -> u64 {\n    panic!(\"helper gave up\")\n}\n",
    );
    step_until_event(&mut engine, &events, limit, |e| match e {
        EngineEvent::Panicked { .. } => Some(()),
        _ => None,
    });
    drop(engine);
    let _ = std::fs::remove_dir_all(root.parent().unwrap());
    println!("CHILD OK");
}

#[test]
fn a_path_dependency_is_watched_and_every_build_ends_in_an_event() {
    let out = run_child(
        "live_crate::child_a_path_dependency_is_watched_and_every_build_ends_in_an_event",
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("CHILD OK"),
        "{:?}\nstderr: {stderr}",
        out.status
    );
    let printed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("grove: "))
        .collect();
    let printed = printed.join("\n");
    for expected in [
        "grove: building module crate `live-split`",
        "grove: building live-split: ",
        "grove: built `live-split` in ",
        "grove: module `split` loaded from ",
        "grove: module `split`: rebuilding",
        "grove: module `split` reloaded: generation 2",
        "grove: module `split`: rebuilt in ",
        "the library is unchanged: nothing to reload",
        "grove: module `split`: build failed, the running version keeps going:",
        "grove: module `split` panicked in frame ",
    ] {
        assert!(printed.contains(expected), "no {expected:?} in:\n{printed}");
    }
    let progress = printed
        .lines()
        .find(|l| l.starts_with("grove: building live-split: "))
        .unwrap();
    assert!(
        progress.ends_with(" crates") && progress.contains('/'),
        "{progress}"
    );
    // rustc's diagnostic, naming the helper's file.
    assert!(stderr.contains("helper/src/lib.rs"), "{stderr}");
}

/// What the traced module keeps: a backtrace taken inside its `process`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct TracedState {
    trace: String,
}

#[test]
fn a_watched_crates_development_build_keeps_file_and_line_in_backtraces() {
    // Built as `watch_crate` builds by default (debug info: line tables only, see
    // `DevProfile`), a backtrace taken inside the loaded module names its function, file
    // and line.
    let dir = scratch_dir().join("traced-module");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let sdk = workspace_root().join("grove-sdk");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"traced-module\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n\
             [dependencies]\ngrove-sdk = {{ path = {:?} }}\n\n[workspace]\n",
            sdk.display().to_string()
        ),
    )
    .unwrap();
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "use grove::prelude::*;\n\
         \n\
         #[grove::module]\n\
         #[derive(Default)]\n\
         pub struct Traced {\n    trace: String,\n}\n\
         \n\
         impl Module for Traced {\n    \
             fn process(&mut self, _ctx: &mut Context) {\n        \
                 self.trace = std::backtrace::Backtrace::force_capture().to_string();\n    \
             }\n\
         }\n",
    )
    .unwrap();
    let mut engine = Engine::builder().target_fps(0.0).build().unwrap();
    let options = BuildOptions {
        target_dir: Some(fixture_target_dir()),
        ..BuildOptions::default()
    };
    let name = engine.watch_crate_with(&dir, options).unwrap();
    engine.run_frames(1);
    let state: TracedState = engine.module_state(&name).unwrap();
    assert!(
        state.trace.contains("process") && state.trace.contains("src/lib.rs:11"),
        "the module's frame with its file and line:\n{}",
        state.trace
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}
