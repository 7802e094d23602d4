//! `cargo grove check`'s report on real libraries: the header read from the file, the
//! schema, and whether (and how) the state a previous run saved loads into a new build.

use cargo_grove::check::report;
use grove_runtime::{Engine, inspect_library, read_saved_state};

use crate::support::{counter, renamed, scratch_dir};

/// A state directory holding the snapshot of the counter built as `variant`, after
/// `prepare` ran with the module loaded.
fn saved_state(variant: &str, prepare: impl FnOnce(&mut Engine)) -> std::path::PathBuf {
    let state_dir = scratch_dir().join("state");
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .state_dir(&state_dir)
        .build()
        .unwrap();
    engine.load_module(counter(variant)).unwrap();
    prepare(&mut engine);
    engine.shutdown().unwrap();
    state_dir
}

/// A state directory holding the v1 counter's snapshot after a few frames.
fn saved_counter_state() -> std::path::PathBuf {
    let state_dir = saved_state("v1", |engine| engine.run_frames(5));
    assert!(state_dir.join("counter.snapshot").is_file());
    state_dir
}

#[test]
fn a_build_with_an_added_field_loads_the_saved_state_and_says_what_changed() {
    let state_dir = saved_counter_state();
    let text = report(&counter("added"), Some(&state_dir)).unwrap();
    for line in [
        "module      counter (type Counter)",
        "panic       unwind: a panic is caught",
        "the schema changed since it was saved: it is read by field name",
        "it loads into this build ✓",
        "added `label` (default)",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    let same = report(&counter("v1"), Some(&state_dir)).unwrap();
    assert!(same.contains("same schema as this build"), "{same}");
    assert!(same.contains("every field read as it was"), "{same}");
}

#[test]
fn a_build_that_cannot_read_the_saved_state_fails_the_check_naming_the_field() {
    let state_dir = saved_counter_state();
    let error = report(&counter("incompatible"), Some(&state_dir))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the saved state would not load into this build") && error.contains("count"),
        "{error}"
    );
}

#[test]
fn a_file_that_is_not_a_module_fails_the_check_with_the_loaders_reason() {
    let not_a_module = scratch_dir().join("libnot.so");
    std::fs::write(&not_a_module, "not an ELF file").unwrap();
    let error = report(&not_a_module, None).unwrap_err().to_string();
    assert!(error.contains("the loader would refuse it"), "{error}");
}

/// A state directory holding the `floats` counter's snapshot, its `speed` an `f64` that an
/// `f32` cannot hold exactly.
fn saved_floats_state() -> std::path::PathBuf {
    saved_state("floats", |engine| {
        let mut state: grove::Dynamic = engine.module_state("counter").unwrap();
        let grove::Dynamic::Map(fields) = &mut state else {
            panic!("the counter's state is a struct")
        };
        for (key, value) in fields.iter_mut() {
            match key.as_str() {
                Some("speed") => *value = grove::Dynamic::F64(0.1),
                Some("big") => *value = grove::Dynamic::Int(7),
                _ => {}
            }
        }
        engine.set_module_state("counter", &state).unwrap();
    })
}

#[test]
fn inspecting_a_build_that_reads_the_saved_state_through_aliases_reports_what_a_reload_does() {
    let state_dir = saved_floats_state();
    let saved = read_saved_state(&state_dir, "counter").unwrap().unwrap();
    let inspection = inspect_library(counter("aliased"), Some(&saved)).unwrap();
    let fields = inspection
        .restore
        .expect("a restore was tried")
        .expect("the saved state loads")
        .expect("a field report");
    assert_eq!(
        renamed(&fields),
        [("speed", "pace", true), ("big", "large", true)],
        "{fields}"
    );
    let lossy: Vec<_> = fields.lossy.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(lossy, ["pace"], "{fields}");
    let text = report(&counter("aliased"), Some(&state_dir)).unwrap();
    assert!(
        text.contains("renamed `speed` -> `pace` (value kept)") && !text.contains("dropped"),
        "{text}"
    );
}
