//! What the host says when a module does what cannot be contained (a segfault, an abort,
//! a stack overflow, a panic while panicking), when a call never returns, and when the file
//! at a watched path never becomes a library. Crashes happen in a child process, which is
//! expected to die: its exit signal and stderr are what is checked.

use std::os::unix::process::ExitStatusExt;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use grove_runtime::{Call, Engine, EngineEvent};

use crate::support::{
    assert_child_ok, counter, engine_on_copy, is_child, rogue, run_child, scratch_dir,
};

/// Child side of every crash test: runs the rogue module (its `ROGUE_ACTION` set by the
/// parent) under the strategy in `ROGUE_STRATEGY` until it crashes in frame 2.
#[test]
#[ignore = "run in a child process by the crash tests"]
fn child_run_rogue() {
    assert!(is_child());
    let strategy = match std::env::var("ROGUE_STRATEGY").as_deref() {
        Ok("threaded") => grove_runtime::Strategy::Threaded,
        Ok("pool") => grove_runtime::Strategy::Pool,
        _ => grove_runtime::Strategy::Sequential,
    };
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .strategy(strategy)
        .build()
        .unwrap();
    engine.load_module(rogue("v1")).unwrap();
    engine.run_frames(5);
    // Time for a thread of the module's to crash.
    std::thread::sleep(Duration::from_millis(500));
    println!("CHILD SURVIVED");
}

fn crash(action: &str, strategy: &str) -> (Option<i32>, String) {
    let out = run_child(
        "crashes::child_run_rogue",
        &[("ROGUE_ACTION", action), ("ROGUE_STRATEGY", strategy)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("CHILD SURVIVED"),
        "{action} under {strategy} did not crash: {stderr}"
    );
    (out.status.signal(), stderr)
}

#[test]
fn a_segfault_in_a_module_names_the_module_the_call_and_the_signal() {
    for strategy in ["sequential", "threaded", "pool"] {
        let (signal, stderr) = crash("segv", strategy);
        assert_eq!(signal, Some(libc::SIGSEGV), "{strategy}: {stderr}");
        assert!(
            stderr.contains("grove: module `rogue` crashed in process: SIGSEGV"),
            "{strategy}: {stderr}"
        );
    }
}

#[test]
fn a_segfault_on_a_thread_the_module_started_names_the_module() {
    let (signal, stderr) = crash("thread_segv", "sequential");
    assert_eq!(signal, Some(libc::SIGSEGV), "{stderr}");
    assert!(
        stderr.contains("grove: module `rogue` crashed in a thread of its own: SIGSEGV"),
        "{stderr}"
    );
}

#[test]
fn an_abort_in_a_module_names_the_module_and_the_call() {
    let (signal, stderr) = crash("abort", "sequential");
    assert_eq!(signal, Some(libc::SIGABRT), "{stderr}");
    assert!(
        stderr.contains("grove: module `rogue` crashed in process: SIGABRT"),
        "{stderr}"
    );
}

#[test]
fn a_stack_overflow_in_a_module_is_reported_before_the_process_ends() {
    for strategy in ["sequential", "threaded"] {
        let (signal, stderr) = crash("overflow", strategy);
        // std's own report follows ours and aborts.
        assert!(
            matches!(signal, Some(libc::SIGABRT | libc::SIGSEGV)),
            "{strategy}: {signal:?} {stderr}"
        );
        assert!(
            stderr.contains("grove: module `rogue` crashed in process: SIGSEGV"),
            "{strategy}: {stderr}"
        );
        assert!(
            stderr.contains("overflowed its stack"),
            "{strategy}: {stderr}"
        );
    }
}

#[test]
fn a_panic_while_panicking_prints_both_messages_and_the_module() {
    let (signal, stderr) = crash("double_panic", "sequential");
    assert_eq!(signal, Some(libc::SIGABRT), "{stderr}");
    for says in [
        "module `rogue` panicked in process while already panicking",
        "first panic, in process",
        "second panic, in Drop while unwinding",
        "grove: module `rogue` crashed in process: SIGABRT",
    ] {
        assert!(stderr.contains(says), "{says:?} not in: {stderr}");
    }
}

fn wait_for(
    events: &Receiver<EngineEvent>,
    within: Duration,
    mut want: impl FnMut(&EngineEvent) -> bool,
) -> Option<EngineEvent> {
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(event) if want(&event) => return Some(event),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Child side of `a_stuck_call_is_reported_while_it_runs`: the watchdog's events must
/// arrive while the engine's thread is still inside the call.
#[test]
#[ignore = "run in a child process by the watchdog test"]
fn child_stuck_call() {
    assert!(is_child());
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .call_limit(Some(Duration::from_millis(200)))
        .build()
        .unwrap();
    let events = engine.subscribe();
    engine.load_module(rogue("v1")).unwrap();
    let watcher = std::thread::spawn(move || {
        let mut reports = Vec::new();
        while let Some(EngineEvent::CallTooLong {
            module,
            call,
            running,
        }) = wait_for(&events, Duration::from_millis(1500), |e| {
            matches!(e, EngineEvent::CallTooLong { .. })
        }) {
            reports.push((module, call, running, Instant::now()));
        }
        reports
    });
    let started = Instant::now();
    engine.run_frames(3); // frame 2 sleeps ROGUE_STUCK_MS
    let returned = Instant::now();
    let reports = watcher.join().unwrap();
    assert!(
        reports.len() >= 2,
        "reported again while it runs: {reports:?}"
    );
    for (module, call, running, at) in &reports {
        assert_eq!(module, "rogue");
        assert_eq!(*call, Call::Process);
        assert!(*running >= Duration::from_millis(200), "{running:?}");
        assert!(*at < returned, "reported while the call ran, not after");
        assert!(*at > started);
    }
    println!("CHILD OK reports={}", reports.len());
}

#[test]
fn a_stuck_call_is_reported_while_it_runs() {
    assert_child_ok(
        "crashes::child_stuck_call",
        &[("ROGUE_ACTION", "stuck"), ("ROGUE_STUCK_MS", "900")],
        "CHILD OK",
    );
}

#[test]
fn ctrl_c_while_a_module_is_stuck_says_which_module() {
    let out = run_child(
        "crashes::child_stuck_until_stopped",
        &[("ROGUE_ACTION", "stuck"), ("ROGUE_STUCK_MS", "1500")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    assert!(
        stderr.contains("grove: stopping, but module `rogue` has been in process")
            && stderr.contains("Ctrl-C again"),
        "{stderr}"
    );
}

/// Child side of `ctrl_c_while_a_module_is_stuck_says_which_module`: a SIGINT arrives
/// while frame 2 is stuck in the module.
#[test]
#[ignore = "run in a child process by the Ctrl-C test"]
fn child_stuck_until_stopped() {
    assert!(is_child());
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .build()
        .unwrap();
    engine.load_module(rogue("v1")).unwrap();
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(700));
        // SAFETY: sends SIGINT to this process, whose handler the engine installed.
        unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
    });
    engine.run().unwrap();
}

#[test]
fn a_file_that_never_becomes_a_module_is_reported_and_the_running_version_goes_on() {
    let dir = scratch_dir();
    let (mut engine, events, path) = engine_on_copy(&dir, 0.0);
    engine.run_frames(2);
    // Replace the library by a text file, in place, and leave it there.
    std::fs::write(&path, b"this is not a library\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reported = None;
    while Instant::now() < deadline && reported.is_none() {
        engine.step();
        while let Ok(event) = events.try_recv() {
            if let EngineEvent::LibraryInvalid { module, reason, .. } = &event {
                reported = Some((module.clone(), reason.clone(), event.to_string()));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (module, reason, shown) = reported.expect("an event within 10 s");
    assert_eq!(module, "counter");
    assert!(reason.contains("no ELF header"), "{reason}");
    assert!(shown.contains("libcounter.so"), "{shown}");
    assert_eq!(engine.generation("counter").unwrap(), 1);
    engine.step();
    assert!(
        engine.stats().modules[0].frames > 2,
        "the running version goes on"
    );
}

#[test]
fn loading_through_a_symlink_watches_the_file_it_points_to() {
    let real_dir = scratch_dir();
    let link_dir = scratch_dir();
    let real = real_dir.join("libcounter.so");
    std::fs::copy(counter("v1"), &real).unwrap();
    let link = link_dir.join("libcounter.so");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut engine = Engine::builder().target_fps(0.0).build().unwrap();
    let events = engine.subscribe();
    engine.load_module(&link).unwrap();
    engine.run_frames(2);
    // A rebuild replaces the real file (rename over it), not the link.
    let fresh = real_dir.join("libcounter.so.new");
    std::fs::copy(counter("v2"), &fresh).unwrap();
    std::fs::rename(&fresh, &real).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.generation("counter").unwrap() == 1 && Instant::now() < deadline {
        engine.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        engine.generation("counter").unwrap(),
        2,
        "the rebuild was seen"
    );
    assert!(
        events
            .try_iter()
            .any(|e| matches!(e, EngineEvent::Reloaded(_)))
    );
}

/// Sleeps 150 ms in frame 2.
struct Slow;

impl grove::Module for Slow {
    fn process(&mut self, ctx: &mut grove::Context) {
        if ctx.frame() == 2 {
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

#[test]
fn a_frame_far_over_its_budget_names_the_module_that_took_it() {
    let mut engine = Engine::builder()
        .target_fps(60.0)
        .watch_files(false)
        .build()
        .unwrap();
    let events = engine.subscribe();
    let quick = grove_runtime::StaticModule::stateless("quick", crate::support::Quick);
    engine.add_linked(quick, None).unwrap();
    let slow = grove_runtime::StaticModule::stateless("slow", Slow);
    engine.add_linked(slow, None).unwrap();
    engine.run_frames(4);
    let slow = events
        .try_iter()
        .find_map(|e| match e {
            EngineEvent::SlowFrame {
                frame,
                ref slowest,
                took,
                ..
            } => Some((frame, slowest.clone(), took, e.to_string())),
            _ => None,
        })
        .expect("a slow frame reported");
    let (frame, slowest, took, shown) = slow;
    assert_eq!(frame, 2);
    assert!(took >= Duration::from_millis(150));
    assert_eq!(slowest.map(|(m, _)| m).as_deref(), Some("slow"), "{shown}");
    assert!(
        shown.contains("budget 16.7 ms") && shown.contains("`slow`"),
        "{shown}"
    );
}
