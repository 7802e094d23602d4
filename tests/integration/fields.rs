//! Field reports and migration: every reload says what became of each field of the state,
//! a host policy refuses lossy or unrelated states, a module's `migrate` hook builds its
//! state from an older version's, and a fresh start keeps the old state in a file.

use grove::Dynamic;
use grove::state::{FieldReport, Migration, StateFormat};
use grove_runtime::{Engine, EngineEvent, Error, LoadedModule, LossyPolicy, Reloaded, StatePolicy};
use serde::{Deserialize, Serialize};

use crate::support::{counter, counter_state, frame, renamed, scratch_dir};

fn run(module: &mut LoadedModule, frames: std::ops::Range<u64>) {
    for n in frames {
        module.process(&frame(n)).unwrap();
    }
}

/// Loads v1, runs 3 frames, reloads into `variant`.
fn reload_v1_into(variant: &str) -> (LoadedModule, grove_runtime::Result<Reloaded>) {
    let mut module = LoadedModule::load(counter("v1")).unwrap();
    run(&mut module, 0..3);
    let reloaded = module.reload(&counter(variant), &frame(3));
    (module, reloaded)
}

fn report(reloaded: &Reloaded) -> &FieldReport {
    reloaded.fields.as_ref().expect("a field report")
}

#[test]
fn a_same_schema_reload_reports_nothing_changed() {
    let (_, reloaded) = reload_v1_into("v2");
    let reloaded = reloaded.unwrap();
    assert_eq!(reloaded.format, StateFormat::Positional);
    assert!(report(&reloaded).is_unchanged());
    assert!(
        EngineEvent::Reloaded(reloaded)
            .to_string()
            .ends_with("; every field read as it was")
    );
}

#[test]
fn an_added_field_is_reported_as_taking_its_default() {
    let (_, reloaded) = reload_v1_into("added");
    let report = report(reloaded.as_ref().unwrap());
    let added: Vec<_> = report
        .added
        .iter()
        .map(|a| (a.path.as_str(), a.count))
        .collect();
    assert_eq!(added, [("label", 1)]);
    assert!(report.removed.is_empty() && report.renamed.is_empty() && !report.is_lossy());
}

#[test]
fn a_removed_field_is_reported_with_its_size() {
    let (_, reloaded) = reload_v1_into("removed");
    // `name` held "v1": a MessagePack string of two bytes and its one-byte header.
    let removed: Vec<_> = report(reloaded.as_ref().unwrap())
        .removed
        .iter()
        .map(|r| (r.path.as_str(), r.count, r.bytes))
        .collect();
    assert_eq!(removed, [("name", 1, 3)]);
}

#[test]
fn a_renamed_field_gets_an_alias_suggestion() {
    let (_, reloaded) = reload_v1_into("renamed");
    let reloaded = reloaded.unwrap();
    let report = report(&reloaded);
    let renamed: Vec<_> = report
        .renamed
        .iter()
        .map(|r| (r.from.as_str(), r.to.as_str(), r.kept))
        .collect();
    assert_eq!(renamed, [("name", "title", false)]);
    assert!(
        report.added.is_empty() && report.removed.is_empty(),
        "{report}"
    );
    let line = EngineEvent::Reloaded(reloaded.clone()).to_string();
    assert!(
        line.contains("probably renamed `name` -> `title`")
            && line.contains("add #[serde(alias = \"name\")] to `title`"),
        "{line}"
    );
}

/// The `floats` variant's state with values its `narrowed` version cannot hold.
#[derive(Serialize, Deserialize, Debug, Default)]
#[serde(default)]
struct Floats {
    count: u64,
    total: u64,
    name: String,
    speed: f64,
    big: u64,
}

/// The `narrowed` variant's state.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct Narrowed {
    count: u64,
    speed: f32,
    big: f64,
}

const TWO_53_PLUS_1: u64 = (1 << 53) + 1;

fn floats_module() -> LoadedModule {
    let mut module = LoadedModule::load(counter("floats")).unwrap();
    let state = Floats {
        count: 7,
        total: 7,
        name: "floats".into(),
        speed: 1e300,
        big: TWO_53_PLUS_1,
    };
    let bytes = grove::state::save(&state, StateFormat::SelfDescribing).unwrap();
    module.load_state(&bytes).unwrap();
    module
}

fn state_of<T: serde::de::DeserializeOwned>(module: &mut LoadedModule) -> T {
    let bytes = module.save_state().unwrap();
    grove::state::load(&bytes, StateFormat::SelfDescribing).unwrap()
}

#[test]
fn lossy_numbers_are_reported_and_taken_by_default() {
    let mut module = floats_module();
    let reloaded = module.reload(&counter("narrowed"), &frame(0)).unwrap();
    let report = report(&reloaded);
    assert_eq!(report.lossy_total, 2, "{report}");
    let lossy: Vec<_> = report
        .lossy
        .iter()
        .map(|l| (l.path.as_str(), l.was.as_str(), l.now.as_str()))
        .collect();
    assert_eq!(
        lossy,
        [
            ("speed", "1e300 (f64)", "inf (f32)"),
            ("big", "9007199254740993", "9.007199254740992e15 (f64)"),
        ]
    );
    let state: Narrowed = state_of(&mut module);
    assert_eq!(state.speed.to_bits(), f32::INFINITY.to_bits());
    assert_eq!(state.big.to_bits(), 9_007_199_254_740_992f64.to_bits());
    assert_eq!(state.count, 7);
}

#[test]
fn lossy_numbers_refused_by_policy_leave_the_running_state_exact() {
    let mut module = floats_module();
    module.set_state_policy(StatePolicy {
        lossy: LossyPolicy::Refuse,
        ..StatePolicy::default()
    });
    let err = module.reload(&counter("narrowed"), &frame(0)).unwrap_err();
    let Error::ReloadRefused { source, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(**source, Error::LossyState { .. }), "{source:?}");
    let message = err.to_string();
    assert!(
        message.contains("cannot hold 2 value(s)")
            && message.contains("`speed`: 1e300 (f64) -> inf (f32)")
            && message.contains("EngineBuilder::lossy_state"),
        "{message}"
    );
    assert_eq!(module.generation(), 1);
    let state: Floats = state_of(&mut module);
    assert_eq!(state.speed.to_bits(), 1e300f64.to_bits(), "untouched");
    assert_eq!(state.big, TWO_53_PLUS_1);
    run(&mut module, 0..1);
    assert_eq!(
        state_of::<Floats>(&mut module).count,
        8,
        "the old version runs"
    );
}

/// An engine (unpaced, not watching) on a private copy of `variant` at `dir/libcounter.so`.
fn engine_on(
    dir: &std::path::Path,
    variant: &str,
    builder: grove_runtime::EngineBuilder,
) -> Engine {
    let path = dir.join("libcounter.so");
    std::fs::copy(counter(variant), &path).unwrap();
    let mut engine = builder.target_fps(0.0).watch_files(false).build().unwrap();
    engine.load_module(&path).unwrap();
    engine
}

/// Puts `variant` at the engine's library path, as a build would.
fn replace_library(dir: &std::path::Path, variant: &str) {
    let path = dir.join("libcounter.so");
    let tmp = dir.join("libcounter.so.new");
    std::fs::copy(counter(variant), &tmp).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

#[test]
fn the_engine_applies_its_lossy_policy() {
    let dir = scratch_dir();
    let mut engine = engine_on(
        &dir,
        "floats",
        Engine::builder().lossy_state(LossyPolicy::Refuse),
    );
    let events = engine.subscribe();
    let floats = Floats {
        speed: 0.1,
        ..Floats::default()
    };
    engine.set_module_state("counter", &floats).unwrap();
    replace_library(&dir, "narrowed");
    let err = engine.reload("counter").unwrap_err();
    assert!(
        err.to_string()
            .contains("`speed`: 1e-1 (f64) -> 1.0000000149011612e-1 (f32)"),
        "{err}"
    );
    assert!(
        events
            .try_iter()
            .any(|e| matches!(e, EngineEvent::ReloadRefused { .. }))
    );
    let state: Floats = engine.module_state("counter").unwrap();
    assert_eq!(state.speed.to_bits(), 0.1f64.to_bits());
}

#[test]
fn another_type_sharing_no_field_is_refused_unless_allowed() {
    let (mut module, refused) = reload_v1_into("other_type");
    let err = refused.unwrap_err();
    let Error::ReloadRefused { source, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(**source, Error::UnrelatedState { .. }),
        "{source:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(
            "(type `Tally`) shares no field with the running one's state (type `Counter`)"
        ) && message.contains("add #[serde(alias = \"name\")] to `note`")
            && message.contains("Engine::reload_fresh"),
        "{message}"
    );
    let state = counter_state(&mut module);
    assert_eq!(
        (state.count, state.total, state.name.as_str()),
        (3, 3, "v1")
    );

    module.set_state_policy(StatePolicy {
        allow_unrelated: true,
        ..StatePolicy::default()
    });
    let reloaded = module.reload(&counter("other_type"), &frame(3)).unwrap();
    let report = report(&reloaded);
    assert!(report.unrelated, "{report}");
    assert_eq!(module.header().type_name, "Tally");
    run(&mut module, 3..5);
    #[derive(Deserialize)]
    struct Tally {
        ticks: u64,
        sum: u64,
    }
    let tally: Tally = state_of(&mut module);
    assert_eq!((tally.ticks, tally.sum), (2, 2), "started from its default");
}

#[test]
fn a_version_bump_calls_migrate_with_the_old_values() {
    let (mut module, reloaded) = reload_v1_into("versioned");
    let reloaded = reloaded.unwrap();
    assert_eq!(
        reloaded.format,
        StateFormat::SelfDescribing,
        "not positional"
    );
    assert_eq!(module.header().state_version, Some(2));
    let migrated = report(&reloaded).migrated.clone().expect("migrated");
    assert_eq!(
        (migrated.from_version, migrated.to_version),
        (1, 2),
        "{migrated:?}"
    );
    let state = counter_state(&mut module);
    assert_eq!(
        (state.count, state.total, state.name.as_str()),
        (1003, 3, "migrated from version 1")
    );
    run(&mut module, 3..5);
    assert_eq!(counter_state(&mut module).count, 1005);
}

#[test]
fn a_migration_that_refuses_refuses_the_reload() {
    let (mut module, refused) = reload_v1_into("migrate_fails");
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("migrate hook refused the state of version 1")
            && message.contains("no way from version 1 to 3"),
        "{message}"
    );
    assert_eq!(module.generation(), 1);
    let state = counter_state(&mut module);
    assert_eq!((state.count, state.name.as_str()), (3, "v1"));
}

#[test]
fn migrate_reads_a_state_that_does_not_read_by_field_name() {
    let (mut module, reloaded) = reload_v1_into("string_count");
    let reloaded = reloaded.unwrap();
    let Some(Migration {
        from_version,
        reason,
        ..
    }) = report(&reloaded).migrated.clone()
    else {
        panic!("{reloaded:?}")
    };
    assert_eq!(from_version, 1);
    assert!(reason.contains("did not read by field name"), "{reason}");
    #[derive(Deserialize)]
    struct StringCount {
        count: String,
        total: u64,
    }
    let state: StringCount = state_of(&mut module);
    assert_eq!(
        (state.count.as_str(), state.total),
        ("3 (from version 1)", 3)
    );
}

#[test]
fn reload_fresh_keeps_the_old_state_in_a_file_that_restores() {
    let dir = scratch_dir();
    let state_dir = dir.join("state");
    let mut engine = engine_on(&dir, "v1", Engine::builder().state_dir(&state_dir));
    engine.run_frames(3);
    replace_library(&dir, "incompatible");
    let refused = engine.reload("counter").unwrap_err();
    assert!(refused.to_string().contains("`count`"), "{refused}");

    let reloaded = engine.reload_fresh("counter").unwrap();
    let file = reloaded.old_state.clone().expect("the old state's file");
    assert!(
        file.starts_with(state_dir.canonicalize().unwrap()),
        "{}",
        file.display()
    );
    assert!(
        EngineEvent::Reloaded(reloaded)
            .to_string()
            .contains(&format!(
                "started from its default state; the old state was written to {}",
                file.display()
            ))
    );
    #[derive(Deserialize)]
    struct Fresh {
        count: String,
    }
    let fresh: Fresh = engine.module_state("counter").unwrap();
    assert_eq!(fresh.count, "", "started from its default");

    let bytes = std::fs::read(&file).unwrap();
    let old = Dynamic::from_slice(&bytes).unwrap();
    assert_eq!(old.get("count"), Some(&Dynamic::Int(3)));
    assert_eq!(old.field::<String>("name").unwrap(), "v1");

    // Back to a version that reads it: the file's content restores exactly.
    replace_library(&dir, "v1");
    engine.reload_fresh("counter").unwrap();
    engine.set_module_state("counter", &old).unwrap();
    let state: crate::support::CounterState = engine.module_state("counter").unwrap();
    assert_eq!(
        (state.count, state.total, state.name.as_str()),
        (3, 3, "v1")
    );
    engine.shutdown().unwrap();
}

#[test]
fn a_snapshot_restored_into_a_changed_version_is_reported() {
    let dir = scratch_dir();
    let state_dir = dir.join("state");
    {
        let mut engine = engine_on(&dir, "floats", Engine::builder().state_dir(&state_dir));
        let floats = Floats {
            count: 4,
            speed: 1e300,
            ..Floats::default()
        };
        engine.set_module_state("counter", &floats).unwrap();
        engine.shutdown().unwrap();
    }
    replace_library(&dir, "narrowed");
    let (mut engine, restored) = resume(&dir, &state_dir);
    let report = restored.expect("a field report");
    assert_eq!(report.lossy_total, 1, "{report}");
    assert_eq!(report.lossy[0].path, "speed");
    let state: Narrowed = engine.module_state("counter").unwrap();
    assert_eq!(
        (state.count, state.speed.to_bits()),
        (4, f32::INFINITY.to_bits())
    );
    engine.shutdown().unwrap();
}

/// The `aliased` variant's state.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct Aliased {
    count: u64,
    pace: f32,
    large: u64,
}

/// The `floats` state the `aliased` tests start from: `speed` does not fit an `f32`
/// exactly, `big` does not fit an `f64`.
fn floats_for_aliased() -> Floats {
    Floats {
        count: 4,
        speed: 0.1,
        big: TWO_53_PLUS_1,
        ..Floats::default()
    }
}

/// What restoring [`floats_for_aliased`] into the `aliased` variant must report, however
/// the state got there: both fields renamed through their alias with their values kept,
/// and `speed`'s narrowing to an `f32` as a lossy value.
fn assert_aliased_report(report: &FieldReport) {
    assert_eq!(
        renamed(report),
        [("speed", "pace", true), ("big", "large", true)],
        "{report}"
    );
    assert!(
        report.added.is_empty() && report.removed.is_empty(),
        "{report}"
    );
    let lossy: Vec<_> = report
        .lossy
        .iter()
        .map(|l| (l.path.as_str(), l.was.as_str(), l.now.as_str()))
        .collect();
    assert_eq!(
        lossy,
        [("pace", "1e-1 (f64)", "1.0000000149011612e-1 (f32)")],
        "{report}"
    );
    assert_eq!(report.lossy_total, 1, "{report}");
    let text = report.to_string();
    assert!(
        text.contains("renamed `speed` -> `pace` (value kept)") && !text.contains("dropped"),
        "{text}"
    );
}

/// The `aliased` state holds the values of [`floats_for_aliased`], as an `f32` can.
fn assert_aliased_state(state: &Aliased) {
    assert_eq!(
        (state.count, state.pace.to_bits(), state.large),
        (4, 0.1f32.to_bits(), TWO_53_PLUS_1)
    );
}

#[test]
fn a_reload_through_an_alias_reports_the_rename_kept_and_the_narrowing() {
    let mut module = LoadedModule::load(counter("floats")).unwrap();
    let bytes = grove::state::save(&floats_for_aliased(), StateFormat::SelfDescribing).unwrap();
    module.load_state(&bytes).unwrap();
    let reloaded = module.reload(&counter("aliased"), &frame(0)).unwrap();
    assert_aliased_report(report(&reloaded));
    assert_aliased_state(&state_of(&mut module));
}

#[test]
fn a_snapshot_restored_through_an_alias_reports_the_rename_kept_and_the_narrowing() {
    let dir = scratch_dir();
    let state_dir = dir.join("state");
    {
        let mut engine = engine_on(&dir, "floats", Engine::builder().state_dir(&state_dir));
        engine
            .set_module_state("counter", &floats_for_aliased())
            .unwrap();
        engine.shutdown().unwrap();
    }
    replace_library(&dir, "aliased");
    let (mut engine, restored) = resume(&dir, &state_dir);
    assert_aliased_report(&restored.expect("a field report"));
    assert_aliased_state(&engine.module_state("counter").unwrap());
    engine.shutdown().unwrap();
}

/// A new engine on `state_dir` loading `dir`'s library, which resumes the state saved
/// there; the field report of its `Restored` event.
fn resume(
    dir: &std::path::Path,
    state_dir: &std::path::Path,
) -> (Engine, Option<grove::state::FieldReport>) {
    let mut engine = Engine::builder()
        .state_dir(state_dir)
        .target_fps(0.0)
        .watch_files(false)
        .build()
        .unwrap();
    let events = engine.subscribe();
    engine.load_module(dir.join("libcounter.so")).unwrap();
    let restored = events
        .try_iter()
        .find_map(|e| match e {
            EngineEvent::Restored { fields, .. } => Some(fields),
            _ => None,
        })
        .expect("a Restored event");
    (engine, restored)
}
