//! `cargo grove run`'s dashboard, driven as a person would: real modules in a real engine,
//! keys pressed, and what a terminal would show read back from ratatui's test backend.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cargo_grove::dashboard::{BuildState, HistoryKind};
use cargo_grove::logs::LogLines;
use cargo_grove::session::Session;
use grove_runtime::{BuildOptions, Engine};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::live_crate::{edit, live_crate, module_source};
use crate::support::{counter, engine_on_copy, fixture_target_dir, scratch_dir};

/// What the terminal shows, one string per row.
fn screen(session: &Session) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(150, 48)).unwrap();
    terminal.draw(|frame| session.render(frame)).unwrap();
    let buffer = terminal.backend().buffer();
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

fn shows(session: &Session, text: &str) -> bool {
    screen(session).iter().any(|row| row.contains(text))
}

/// The row of the modules table for `module`.
fn module_row(session: &Session, module: &str) -> String {
    screen(session)
        .into_iter()
        .find(|row| row.starts_with(&format!("│{module} ")))
        .unwrap_or_else(|| panic!("no row for {module}:\n{}", screen(session).join("\n")))
}

fn press(session: &mut Session, c: char) {
    session.press(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
}

fn tick_until(session: &mut Session, limit: Duration, mut done: impl FnMut(&Session) -> bool) {
    let deadline = Instant::now() + limit;
    while !done(session) {
        assert!(
            Instant::now() < deadline,
            "timed out; the screen:\n{}",
            screen(session).join("\n")
        );
        session.tick();
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn keys_reload_pause_step_unload_and_quit_a_running_module() {
    let (engine, events, _path) = engine_on_copy(&scratch_dir(), 0.0);
    let mut session = Session::new(
        "test",
        engine,
        events,
        &[("counter".to_owned(), None)],
        BuildOptions::default(),
        Some(LogLines::default()),
    );
    for _ in 0..10 {
        session.tick();
    }
    session.refresh();
    let row = module_row(&session, "counter");
    assert!(row.contains(" 1 ") && row.contains("healthy"), "{row}");

    press(&mut session, 'r');
    assert_eq!(session.engine().generation("counter").unwrap(), 2);
    let module = &session.dashboard().modules()[0];
    assert_eq!(module.generation, 2);
    assert!(
        matches!(
            module.history.back().map(|h| &h.what),
            Some(HistoryKind::Reloaded { generation: 2, .. })
        ),
        "{:?}",
        module.history
    );
    assert!(shows(&session, "reloaded → gen 2"));
    assert!(module_row(&session, "counter").contains(" 2 "));

    press(&mut session, 'p');
    assert!(session.dashboard().paused());
    assert!(shows(&session, "PAUSED"));
    let frame = session.engine().frame();
    for _ in 0..3 {
        session.tick();
    }
    assert_eq!(
        session.engine().frame(),
        frame,
        "no frame runs while paused"
    );
    press(&mut session, 's');
    assert_eq!(
        session.engine().frame(),
        frame + 1,
        "s runs exactly one frame"
    );
    press(&mut session, 'p');
    assert!(!session.dashboard().paused());
    session.tick();
    assert_eq!(session.engine().frame(), frame + 2, "frames run again");

    press(&mut session, 'u');
    assert!(session.engine().module_names().is_empty(), "unloaded");
    assert!(!session.dashboard().modules()[0].loaded);
    assert!(module_row(&session, "counter").contains("unloaded"));
    press(&mut session, 'l');
    assert!(
        shows(&session, "was not built from a crate here"),
        "a module loaded from a library file cannot be built again:\n{}",
        screen(&session).join("\n")
    );

    press(&mut session, 'q');
    assert!(session.quitting());
    session.shutdown().unwrap();
}

#[test]
fn a_module_that_panics_shows_as_faulted_with_its_message() {
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .build()
        .unwrap();
    let dir = scratch_dir();
    let path = dir.join("libcounter.so");
    std::fs::copy(counter("panic_process"), &path).unwrap();
    let events = engine.subscribe();
    engine.load_module(&path).unwrap();
    let mut session = Session::new("test", engine, events, &[], BuildOptions::default(), None);
    for _ in 0..6 {
        session.tick();
    }
    session.refresh();
    let module = &session.dashboard().modules()[0];
    assert!(module.faulted && module.panics == 1, "{module:?}");
    assert!(module_row(&session, "counter").contains("faulted"));
    assert!(
        shows(&session, "fixture panics in process at frame 3"),
        "{}",
        screen(&session).join("\n")
    );
    session.shutdown().unwrap();
}

#[test]
fn a_compile_error_shows_in_the_dashboard_and_the_fix_reloads_in_place() {
    let dir: PathBuf = live_crate("dashboard-module");
    let mut engine = Engine::builder().target_fps(0.0).build().unwrap();
    let build = BuildOptions {
        target_dir: Some(fixture_target_dir()),
        ..BuildOptions::default()
    };
    let events = engine.subscribe();
    let name = engine.watch_crate_with(&dir, build.clone()).unwrap();
    let mut session = Session::new(
        "live",
        engine,
        events,
        &[(name.clone(), Some(dir.clone()))],
        build,
        Some(LogLines::default()),
    );
    for _ in 0..5 {
        session.tick();
    }

    edit(&dir, &module_source("1 +")); // a syntax error
    tick_until(&mut session, Duration::from_secs(300), |s| {
        matches!(s.dashboard().modules()[0].build, BuildState::Failed(_))
    });
    assert!(module_row(&session, &name).contains("FAILED"));
    assert!(shows(&session, "build failed; the running version is kept"));
    assert!(
        shows(&session, "src/lib.rs"),
        "the compiler's message, with its location:\n{}",
        screen(&session).join("\n")
    );
    assert_eq!(session.engine().generation(&name).unwrap(), 1);

    edit(&dir, &module_source("2")); // the fix
    // The new version may take over before or after the build is reported finished.
    tick_until(&mut session, Duration::from_secs(300), |s| {
        let module = &s.dashboard().modules()[0];
        module.generation == 2 && matches!(module.build, BuildState::Built { .. })
    });
    session.refresh();
    assert!(shows(&session, "reloaded → gen 2"));
    assert!(module_row(&session, &name).contains("ok "));

    // Built from a crate, an unloaded module loads again from it.
    press(&mut session, 'u');
    assert!(session.engine().module_names().is_empty());
    press(&mut session, 'l');
    assert_eq!(session.engine().module_names(), std::slice::from_ref(&name));
    assert!(session.dashboard().modules()[0].loaded);
    assert!(shows(&session, &format!("`{name}` loaded from")));
    session.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn a_module_resumed_from_a_previous_run_shows_what_became_of_its_fields() {
    let state_dir = scratch_dir().join("state");
    let engine = || {
        Engine::builder()
            .target_fps(0.0)
            .watch_files(false)
            .state_dir(&state_dir)
            .build()
            .unwrap()
    };
    let mut first = engine();
    first.load_module(counter("v1")).unwrap();
    first.run_frames(5);
    first.shutdown().unwrap();
    drop(first);

    let mut second = engine();
    let events = second.subscribe();
    second.load_module(counter("added")).unwrap();
    let session = Session::new("test", second, events, &[], BuildOptions::default(), None);
    let module = &session.dashboard().modules()[0];
    assert!(
        module
            .history
            .iter()
            .any(|h| matches!(&h.what, HistoryKind::Restored { fields, .. } if fields.contains("added `label`"))),
        "{:?}",
        module.history
    );
    assert!(shows(&session, "resumed from the state saved"));
    assert!(shows(&session, "state: added `label` (default)"));
    session.shutdown().unwrap();
}
