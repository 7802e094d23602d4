//! A host that sets up no `tracing` subscriber still sees what grove does: the engine
//! prints its own short lines on stderr (loads, reloads, refusals, panics) and the loaded
//! modules' `INFO` events, until the host sets a subscriber, scoped or global. Printed
//! output is process-wide, so each case runs in a child process of its own.

use grove_runtime::{Engine, EngineEvent};
use tracing_subscriber::layer::SubscriberExt;

use crate::logs::Capture;
use crate::support::{counter, run_child, scratch_dir};

const MODE: &str = "GROVE_TEST_CONSOLE";

/// Marks where each phase of the child starts in its stderr.
fn phase(name: &str) {
    eprintln!("=== {name}");
}

/// Loads the counter, runs frames, reloads it as v2 and as a version that panics in
/// frame 3, then runs into the panic; asserts the events.
fn exercise(engine: &mut Engine) {
    let dir = scratch_dir();
    let path = dir.join("libcounter.so");
    std::fs::copy(counter("v1"), &path).unwrap();
    let events = engine.subscribe();
    engine.load_module(&path).unwrap();
    // A static module's events are printed as a loaded one's.
    engine
        .add_static("counter-static", counter::Counter::default())
        .unwrap();
    engine.run_frames(2);
    engine.unload("counter-static").unwrap();
    std::fs::copy(counter("v2"), &path).unwrap();
    engine.reload("counter").unwrap();
    std::fs::copy(counter("incompatible"), &path).unwrap();
    engine.reload("counter").unwrap_err();
    std::fs::copy(counter("panic_process"), &path).unwrap();
    engine.reload("counter").unwrap();
    engine.run_frames(3);
    let panicked = events
        .try_iter()
        .filter(|e| matches!(e, EngineEvent::Panicked { .. }))
        .count();
    assert_eq!(panicked, 1, "the module panicked once");
    engine.unload("counter").unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

fn engine(console: bool) -> Engine {
    Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .console(console)
        .build()
        .unwrap()
}

#[test]
#[ignore = "run in a child process by the test of the same name without `child_`"]
fn child_console_lines() {
    let console = std::env::var(MODE).unwrap() != "off";
    phase("no subscriber");
    exercise(&mut engine(console));
    phase("scoped subscriber");
    let capture = Capture::default();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(capture.clone()), || {
        exercise(&mut engine(console));
    });
    assert!(
        !capture.ticks().is_empty(),
        "the scoped subscriber got the events"
    );
    phase("no subscriber again");
    exercise(&mut engine(console));
    phase("global subscriber");
    let capture = Capture::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture.clone()))
        .unwrap();
    exercise(&mut engine(console));
    assert!(
        !capture.ticks().is_empty(),
        "the global subscriber got the events"
    );
    println!("CHILD OK");
}

/// The child's stderr between `=== name` and the next phase.
fn section<'a>(stderr: &'a str, name: &str) -> &'a str {
    let start = stderr
        .find(&format!("=== {name}\n"))
        .unwrap_or_else(|| panic!("no phase {name:?} in:\n{stderr}"));
    let rest = &stderr[start + name.len() + 5..];
    &rest[..rest.find("=== ").unwrap_or(rest.len())]
}

/// The lines grove printed: its own and the module's.
fn printed(section: &str) -> Vec<&str> {
    section
        .lines()
        .filter(|l| {
            l.starts_with("grove: ") || l.contains(" counter: ") || l.contains(" counter-static: ")
        })
        .collect()
}

#[test]
fn console_lines() {
    let out = run_child("console::child_console_lines", &[(MODE, "on")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("CHILD OK"),
        "{:?}\n{stderr}",
        out.status
    );
    for name in ["no subscriber", "no subscriber again"] {
        let lines = printed(section(&stderr, name)).join("\n");
        for expected in [
            "grove: module `counter` loaded from ",
            " INFO counter: tick count=1 ",
            " INFO counter-static: tick count=1 ",
            "variant=\"v1\"",
            "grove: module `counter` reloaded: generation 2",
            "grove: reload of module `counter` refused, generation 2 keeps running",
            "grove: module `counter` panicked in frame ",
            "fixture panics in process",
            "; skipped until it is reloaded",
            "grove: module `counter` unloaded",
        ] {
            assert!(
                lines.contains(expected),
                "{name}: no {expected:?} in:\n{lines}"
            );
        }
    }
    for name in ["scoped subscriber", "global subscriber"] {
        let lines = printed(section(&stderr, name));
        assert!(lines.is_empty(), "{name}: printed {lines:#?}");
    }

    // Turned off: nothing, subscriber or not.
    let out = run_child("console::child_console_lines", &[(MODE, "off")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    let lines = printed(&stderr);
    assert!(lines.is_empty(), "printed with the console off: {lines:#?}");
}
