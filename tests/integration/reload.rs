//! The reload transaction: new code runs, state is kept, schema changes are handled, and a
//! refused reload leaves the old version running with its state.

use grove::state::StateFormat;
use grove_runtime::bench_support::mapped_files_in;
use grove_runtime::{Error, LoadedModule, Staging, Unmapped};

use crate::support::{CounterState, counter, counter_state, frame, scratch_dir};

fn run(module: &mut LoadedModule, frames: std::ops::Range<u64>) {
    for n in frames {
        module.process(&frame(n)).unwrap();
    }
}

#[test]
fn v1_to_v2_keeps_the_counter_and_runs_the_new_code() {
    let staging = std::sync::Arc::new(Staging::new().unwrap());
    let mut module = LoadedModule::load_in(&counter("v1"), &staging, &frame(0)).unwrap();
    assert_eq!(module.name(), "counter");
    run(&mut module, 0..5);
    assert_eq!(counter_state(&mut module).total, 5);

    let reloaded = module.reload(&counter("v2"), &frame(5)).unwrap();
    assert_eq!(reloaded.generation, 2);
    assert_eq!(module.generation(), 2);
    assert_eq!(
        reloaded.format,
        StateFormat::Positional,
        "same schema, fast path"
    );
    assert!(reloaded.state_bytes > 0);
    assert_eq!(
        reloaded.old_library,
        Unmapped::Yes,
        "old library really unmapped"
    );
    assert_eq!(
        mapped_files_in(staging.path()),
        1,
        "only the new copy is mapped"
    );

    run(&mut module, 5..8);
    let state = counter_state(&mut module);
    assert_eq!(state.count, 8, "state carried over");
    assert_eq!(
        state.total,
        5 + 3 * 2,
        "v2 code (step 2) runs after the reload"
    );
    assert_eq!(state.name, "v2");
}

#[test]
fn old_copies_leave_memory_and_disk() {
    let staging = std::sync::Arc::new(Staging::new().unwrap());
    let mut module = LoadedModule::load_in(&counter("v1"), &staging, &frame(0)).unwrap();
    for (i, variant) in ["v2", "v1", "v2", "v1"].into_iter().enumerate() {
        let reloaded = module.reload(&counter(variant), &frame(i as u64)).unwrap();
        assert_eq!(reloaded.old_library, Unmapped::Yes);
        assert_eq!(
            mapped_files_in(staging.path()),
            1,
            "only the running copy is mapped"
        );
        assert_eq!(
            std::fs::read_dir(staging.path()).unwrap().count(),
            1,
            "one staged copy"
        );
    }
    drop(module);
    assert_eq!(mapped_files_in(staging.path()), 0, "nothing left mapped");
    assert_eq!(
        std::fs::read_dir(staging.path()).unwrap().count(),
        0,
        "no copy left"
    );
}

/// Loads v1, runs 3 frames, reloads into `variant`, runs 2 frames, returns the state.
fn schema_change(variant: &str) -> (grove_runtime::Reloaded, CounterState) {
    let mut module = LoadedModule::load(counter("v1")).unwrap();
    run(&mut module, 0..3);
    let reloaded = module.reload(&counter(variant), &frame(3)).unwrap();
    run(&mut module, 3..5);
    (reloaded, counter_state(&mut module))
}

#[test]
fn added_field_takes_its_default() {
    let (reloaded, state) = schema_change("added");
    assert_eq!(reloaded.format, StateFormat::SelfDescribing);
    assert_eq!(state.count, 5);
    assert_eq!(state.total, 5);
    assert_eq!(
        state.label,
        ["added", "added"],
        "the new field started empty"
    );
}

#[test]
fn removed_field_is_dropped() {
    let (reloaded, state) = schema_change("removed");
    assert_eq!(reloaded.format, StateFormat::SelfDescribing);
    assert_eq!((state.count, state.total), (5, 5));
    assert_eq!(state.name, "", "the removed field is gone");
}

#[test]
fn reordered_fields_still_match() {
    let (reloaded, state) = schema_change("reordered");
    assert_eq!(reloaded.format, StateFormat::SelfDescribing);
    assert_eq!(
        (state.count, state.total, state.name.as_str()),
        (5, 5, "reordered")
    );
}

#[test]
fn widened_field_keeps_its_value() {
    let (reloaded, state) = schema_change("widened");
    assert_eq!(reloaded.format, StateFormat::SelfDescribing);
    assert_eq!((state.count, state.total), (5, 5));
}

#[test]
fn incompatible_state_refuses_the_reload_and_keeps_the_old_version() {
    let mut module = LoadedModule::load(counter("v1")).unwrap();
    run(&mut module, 0..3);
    let err = module
        .reload(&counter("incompatible"), &frame(3))
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, Error::ReloadRefused { generation: 1, .. }),
        "{err:?}"
    );
    assert!(message.contains("`count`"), "names the field: {message}");
    assert_eq!(module.generation(), 1);
    run(&mut module, 3..5);
    let state = counter_state(&mut module);
    assert_eq!(
        (state.count, state.total, state.name.as_str()),
        (5, 5, "v1")
    );
}

#[test]
fn a_library_of_another_module_is_refused() {
    let mut module = LoadedModule::load(counter("v1")).unwrap();
    run(&mut module, 0..2);
    // Any shared library that is not a grove module.
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("libc on this machine");
    let err = module.reload(libc.as_ref(), &frame(2)).unwrap_err();
    assert!(err.to_string().contains("exports no grove module"), "{err}");
    run(&mut module, 2..3);
    assert_eq!(counter_state(&mut module).count, 3);
}

#[test]
fn missing_and_garbage_files_are_clear_errors() {
    let dir = scratch_dir();
    let missing = dir.join("nope.so");
    let err = LoadedModule::load(&missing).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.so"), "{err}");

    let garbage = dir.join("garbage.so");
    std::fs::write(&garbage, b"definitely not an ELF file").unwrap();
    let err = LoadedModule::load(&garbage).unwrap_err();
    assert!(matches!(err, Error::NotAModule { .. }), "{err:?}");
    assert!(err.to_string().contains("garbage.so"), "{err}");

    let bytes = std::fs::read(counter("v1")).unwrap();
    let truncated = dir.join("truncated.so");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = LoadedModule::load(&truncated).unwrap_err();
    assert!(matches!(err, Error::NotAModule { .. }), "{err:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_module_built_by_another_rustc_loads_and_reloads() {
    let staging = std::sync::Arc::new(Staging::new().unwrap());
    let mut module = LoadedModule::load_in(&counter("v1"), &staging, &frame(0)).unwrap();
    let ours = module.header().rustc_version.clone();
    assert!(ours.starts_with("rustc "), "{ours}");
    // The same library, claiming another compiler (same length, so nothing moves).
    let other: String = ours
        .char_indices()
        .map(|(i, c)| {
            if i == 6 {
                if c == '9' { '8' } else { '9' }
            } else {
                c
            }
        })
        .collect();
    let mut bytes = std::fs::read(counter("v2")).unwrap();
    let mut patched = 0;
    while let Some(at) = bytes.windows(ours.len()).position(|w| w == ours.as_bytes()) {
        bytes[at..at + ours.len()].copy_from_slice(other.as_bytes());
        patched += 1;
    }
    assert!(patched >= 1, "the header's rustc version is in the file");
    let dir = scratch_dir();
    let path = dir.join("libcounter-other-rustc.so");
    std::fs::write(&path, &bytes).unwrap();

    module.process(&frame(0)).unwrap();
    module.reload(&path, &frame(1)).unwrap();
    assert_eq!(module.header().rustc_version, other);
    module.process(&frame(1)).unwrap();
    assert_eq!(counter_state(&mut module).count, 2);
    drop(module);
    std::fs::remove_dir_all(dir).unwrap();
}
