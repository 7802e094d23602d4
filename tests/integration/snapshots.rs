//! State that outlives the process: snapshots in a state directory, restored when a module
//! loads, after a clean stop, a SIGKILL and a segfault in a module (real child processes),
//! and every kind of bad snapshot file set aside, never loaded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grove_runtime::{Engine, EngineEvent, Error, PreviousRun};

use crate::support::{counter, is_child, rogue, scratch_dir};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Count {
    count: u64,
    total: u64,
}

const STATE_DIR_ENV: &str = "GROVE_TEST_STATE_DIR";

fn engine_in(dir: &Path) -> Engine {
    Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .state_dir(dir)
        .build()
        .unwrap()
}

/// As [`engine_in`], taking a snapshot every `every`.
fn engine_every(dir: &Path, every: Duration) -> Engine {
    Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .state_dir(dir)
        .snapshot_every(every)
        .build()
        .unwrap()
}

fn count(engine: &mut Engine) -> u64 {
    engine.module_state::<Count>("counter").unwrap().count
}

#[test]
fn a_stopped_host_resumes_where_it_stopped() {
    let dir = scratch_dir().join("state");
    let mut engine = engine_in(&dir);
    assert!(
        engine.previous_run().is_none(),
        "a new directory has no history"
    );
    engine.load_module(counter("v1")).unwrap();
    engine.run_frames(10);
    engine.shutdown().unwrap();
    drop(engine);

    let mut engine = engine_in(&dir);
    assert!(
        engine.previous_run().is_none(),
        "the last run shut down cleanly"
    );
    let events = engine.subscribe();
    engine.load_module(counter("v1")).unwrap();
    assert_eq!(count(&mut engine), 10, "restored before anything ran");
    assert!(events.try_iter().any(|e| matches!(
        &e,
        EngineEvent::Restored { module, age, .. } if module == "counter" && *age < Duration::from_secs(60)
    )));
    engine.run_frames(5);
    assert_eq!(count(&mut engine), 15);
    let Count { total, .. } = engine.module_state("counter").unwrap();
    assert_eq!(total, 15, "every field carried");
}

#[test]
fn an_engine_dropped_with_no_module_loaded_is_a_clean_end() {
    // A host that gives up before any module loaded (a load refused, an error) drops its
    // engine: that is no crash, and the next run must not say it was.
    let dir = scratch_dir().join("state");
    drop(engine_in(&dir));
    assert!(
        !dir.join("running").exists(),
        "the run marker was left behind"
    );
    assert!(engine_in(&dir).previous_run().is_none());
}

#[test]
fn a_reload_is_snapshotted_at_once() {
    let dir = scratch_dir().join("state");
    let mut engine = engine_every(&dir, Duration::from_secs(3600));
    engine.load_module(counter("v1")).unwrap();
    engine.run_frames(7);
    engine.reload("counter").unwrap();
    // Nothing else takes a snapshot before the shutdown: the file is the reload's.
    let snapshot = dir.join("counter.snapshot");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !snapshot.exists() {
        assert!(Instant::now() < deadline, "the reload took no snapshot");
        std::thread::sleep(Duration::from_millis(5));
    }
    let copy = scratch_dir().join("state");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(&snapshot, copy.join("counter.snapshot")).unwrap();

    let mut elsewhere = engine_in(&copy);
    elsewhere.load_module(counter("v1")).unwrap();
    assert_eq!(count(&mut elsewhere), 7);
}

#[test]
fn two_engines_cannot_share_a_state_dir() {
    let dir = scratch_dir().join("state");
    let first = engine_in(&dir);
    let error = Engine::builder().state_dir(&dir).build().unwrap_err();
    assert!(matches!(error, Error::StateDir { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains(&format!("another engine (process {})", std::process::id())),
        "{error}"
    );
    drop(first);
    let _second = engine_in(&dir);
}

/// Spawns this test binary as a child running test `name`, with `env`.
fn spawn_child(name: &str, env: &[(&str, &str)]) -> std::process::Child {
    let _ = (counter("v1"), rogue("v1"));
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("GROVE_TEST_CHILD", "1")
    .env("RUST_BACKTRACE", "0")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.spawn().expect("the test binary runs")
}

/// Child side of `a_killed_host_loses_at_most_the_snapshot_interval`: counts until killed.
#[test]
#[ignore = "run in a child process by the SIGKILL test"]
fn child_counts_until_killed() {
    assert!(is_child());
    let dir = PathBuf::from(std::env::var(STATE_DIR_ENV).unwrap());
    let mut engine = engine_every(&dir, Duration::from_millis(20));
    engine.load_module(counter("v1")).unwrap();
    loop {
        engine.step();
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_killed_host_loses_at_most_the_snapshot_interval() {
    let dir = scratch_dir().join("state");
    let mut child = spawn_child(
        "snapshots::child_counts_until_killed",
        &[(STATE_DIR_ENV, dir.to_str().unwrap())],
    );
    // Until its first snapshot is on disk, then a little longer: killed mid-run.
    let snapshot = dir.join("counter.snapshot");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !snapshot.exists() {
        assert!(Instant::now() < deadline, "no snapshot written");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));

    let mut engine = engine_in(&dir);
    assert_eq!(engine.previous_run(), Some(&PreviousRun::Unclean));
    engine.load_module(counter("v1")).unwrap();
    let restored = count(&mut engine);
    assert!(restored > 0, "the child's count resumed: {restored}");
    engine.run_frames(1);
    assert_eq!(count(&mut engine), restored + 1);
}

/// Child side of `a_crash_in_a_module_is_named_at_the_next_start`: a counter snapshotted
/// at frame 2, then a module that segfaults in that frame.
#[test]
#[ignore = "run in a child process by the crash-recovery test"]
fn child_crashes_after_a_snapshot() {
    assert!(is_child());
    let dir = PathBuf::from(std::env::var(STATE_DIR_ENV).unwrap());
    let mut engine = engine_every(&dir, Duration::from_secs(3600));
    engine.load_module(counter("v1")).unwrap();
    engine.load_module(rogue("v1")).unwrap();
    engine.run_frames(2);
    engine.snapshot_now();
    engine.step(); // rogue writes to address 8 in frame 2
    println!("CHILD SURVIVED");
}

#[test]
fn a_crash_in_a_module_is_named_at_the_next_start() {
    let dir = scratch_dir().join("state");
    let child = spawn_child(
        "snapshots::child_crashes_after_a_snapshot",
        &[
            (STATE_DIR_ENV, dir.to_str().unwrap()),
            ("ROGUE_ACTION", "segv"),
        ],
    );
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut engine = engine_in(&dir);
    assert_eq!(
        engine.previous_run(),
        Some(&PreviousRun::Crashed {
            module: "rogue".into(),
            call: "process".into(),
            signal: "SIGSEGV".into(),
        })
    );
    engine.load_module(counter("v1")).unwrap();
    assert_eq!(count(&mut engine), 2);
    // The record is kept, renamed, and not reported again.
    drop(engine);
    let engine = engine_in(&dir);
    assert_eq!(engine.previous_run(), None);
    assert!(std::fs::read_dir(&dir).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("crashed-")
    }));
}

#[test]
fn bad_snapshot_files_are_set_aside_never_loaded() {
    // A good snapshot of 5 frames, to damage.
    let source = scratch_dir().join("state");
    let mut engine = engine_in(&source);
    engine.load_module(counter("v1")).unwrap();
    engine.run_frames(5);
    engine.shutdown().unwrap();
    drop(engine);
    let good = std::fs::read(source.join("counter.snapshot")).unwrap();
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    let mut future = good.clone();
    future[8] = 0xff;
    let other = {
        let dir = scratch_dir().join("state");
        let mut engine = engine_in(&dir);
        engine.load_module(rogue("v1")).unwrap();
        engine.shutdown().unwrap();
        drop(engine);
        std::fs::read(dir.join("rogue.snapshot")).unwrap()
    };
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("empty", Vec::new(), "empty or truncated"),
        ("truncated", good[..good.len() / 2].to_vec(), "checksum"),
        ("bit flip", flipped, "checksum"),
        (
            "foreign",
            b"\x7fELF\x02\x01\x01 not a snapshot at all".to_vec(),
            "not a grove snapshot",
        ),
        ("future", future, "newer than this host"),
        ("another module", other, "holds module `rogue`"),
    ];
    for (label, bytes, problem) in cases {
        let dir = scratch_dir().join("state");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("counter.snapshot");
        std::fs::write(&path, &bytes).unwrap();
        let mut engine = engine_in(&dir);
        let events = engine.subscribe();
        engine.load_module(counter("v1")).unwrap();
        assert_eq!(count(&mut engine), 0, "{label}: starts from its default");
        let set_aside = events.try_iter().find_map(|e| match e {
            EngineEvent::SnapshotSetAside {
                moved_to, problem, ..
            } => Some((moved_to, problem)),
            _ => None,
        });
        let (moved_to, said) = set_aside.unwrap_or_else(|| panic!("{label}: not reported"));
        assert!(said.contains(problem), "{label}: {said}");
        let moved_to = moved_to.unwrap();
        assert_eq!(
            std::fs::read(&moved_to).unwrap(),
            bytes,
            "{label}: kept as it was"
        );
        assert!(!path.exists() || std::fs::read(&path).unwrap() != bytes);
    }
}

#[test]
fn a_state_this_version_cannot_read_is_set_aside() {
    let dir = scratch_dir().join("state");
    let mut engine = engine_in(&dir);
    engine.load_module(counter("incompatible")).unwrap();
    engine.run_frames(3);
    engine.shutdown().unwrap();
    drop(engine);

    let mut engine = engine_in(&dir);
    let events = engine.subscribe();
    engine.load_module(counter("v1")).unwrap();
    assert_eq!(count(&mut engine), 0);
    assert!(events.try_iter().any(|e| matches!(
        &e,
        EngineEvent::SnapshotSetAside { problem, moved_to: Some(_), .. }
            if problem.contains("does not load into this version")
    )));
}

#[test]
fn a_state_dir_that_cannot_be_made_is_an_error_at_build() {
    // Under a regular file: no directory can be made there, whoever runs the test.
    let file = scratch_dir().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let error = Engine::builder()
        .state_dir(file.join("state"))
        .build()
        .unwrap_err();
    assert!(matches!(error, Error::StateDir { .. }), "{error:?}");
    assert!(
        error.to_string().contains("give a writable directory"),
        "{error}"
    );
}

#[test]
fn a_snapshot_that_cannot_be_written_is_reported_and_frames_go_on() {
    let dir = scratch_dir().join("state");
    let mut engine = engine_in(&dir);
    let events = engine.subscribe();
    engine.load_module(counter("v1")).unwrap();
    engine.run_frames(2);
    // The directory removed while the engine runs: made again.
    std::fs::remove_dir_all(&dir).unwrap();
    engine.snapshot_now();
    assert!(dir.join("counter.snapshot").exists());
    // The directory is gone (a disk unmounted, say), a file in its place.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    engine.snapshot_now();
    let failed = events.try_iter().find_map(|e| match e {
        EngineEvent::SnapshotFailed { module, error } => Some((module, error)),
        _ => None,
    });
    let (module, error) = failed.expect("reported");
    assert_eq!(module, "counter");
    assert!(error.contains("cannot write"), "{error}");
    engine.run_frames(3);
    assert_eq!(count(&mut engine), 5, "frames went on");
    // The last snapshot not written is the shutdown's error: a restart would lose state.
    let error = engine.shutdown().unwrap_err();
    assert!(matches!(error, Error::Snapshot { .. }), "{error:?}");
}
