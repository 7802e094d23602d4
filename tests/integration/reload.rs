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
        // The old copy is deleted on the staging area's thread.
        staging.wait_for_removals();
        assert_eq!(
            std::fs::read_dir(staging.path()).unwrap().count(),
            1,
            "one staged copy"
        );
    }
    drop(module);
    assert_eq!(mapped_files_in(staging.path()), 0, "nothing left mapped");
    staging.wait_for_removals();
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

/// The counter's `game` state as the tests read it (by field name), floats as their bits.
mod game {
    use std::collections::{BTreeMap, HashMap};

    use serde::Deserialize;

    #[derive(Debug, PartialEq, Eq, Clone, Copy)]
    pub struct F32(pub u32);

    impl<'de> Deserialize<'de> for F32 {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            f32::deserialize(d).map(|f| F32(f.to_bits()))
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    pub struct F64(pub u64);

    impl<'de> Deserialize<'de> for F64 {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            f64::deserialize(d).map(|f| F64(f.to_bits()))
        }
    }

    #[derive(Deserialize, Debug, PartialEq)]
    pub struct State {
        pub count: u64,
        pub total: u64,
        pub world: World,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    pub struct World {
        pub units: HashMap<u32, Unit>,
        pub phase: Phase,
        pub scores: BTreeMap<String, i64>,
        pub weather: Option<Weather>,
        pub log: Vec<Event>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    pub struct Unit {
        pub pos: (F32, F32),
        pub hp: i32,
        pub order: Order,
        pub target: Option<u32>,
        pub inventory: Vec<Item>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    pub enum Order {
        Idle,
        Move { to: (F32, F32), run: bool },
        Attack(u32),
        Patrol(Vec<(F32, F32)>),
        Feel(Mood),
    }

    #[derive(Deserialize, Debug, PartialEq)]
    pub enum Mood {
        Calm,
        Angry { at: Option<u32> },
        Scared(F64),
    }

    #[derive(Deserialize, Debug, PartialEq)]
    pub enum Item {
        Coin(u64),
        Potion { heal: u16 },
        Key(char),
    }

    #[derive(Deserialize, Debug, PartialEq)]
    pub enum Phase {
        Lobby,
        Playing { level: u8, since: u64 },
        Over(Option<String>),
    }

    #[derive(Deserialize, Debug, PartialEq)]
    pub enum Weather {
        Clear,
        Rain { mm: F32 },
        Wind(F32, F32),
    }

    #[derive(Deserialize, Debug, PartialEq)]
    pub enum Event {
        Spawned(u32),
        Died { unit: u32, by: Option<u32> },
        Said(u32, String),
    }

    pub fn state(module: &mut grove_runtime::LoadedModule) -> State {
        let bytes = module.save_state().expect("state saves");
        rmp_serde::from_slice(&bytes).expect("state decodes")
    }
}

#[test]
fn fields_added_to_nested_grove_state_types_take_their_defaults_and_nothing_else_moves() {
    use serde::Deserialize;
    #[derive(Deserialize, Debug, PartialEq)]
    struct Added {
        world: AddedWorld,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    struct AddedWorld {
        turn_limit: u32,
        phase: AddedPhase,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    enum AddedPhase {
        Lobby,
        Playing {
            level: u8,
            since: u64,
            paused_at: Vec<u64>,
        },
        Over(Option<String>),
    }

    let mut module = LoadedModule::load(counter("game")).unwrap();
    run(&mut module, 0..42);
    let before = game::state(&mut module);
    // Frame 41 left the game playing: a struct variant, whose new field is missing below.
    assert_eq!(
        before.world.phase,
        game::Phase::Playing {
            level: 5,
            since: 41
        }
    );

    // `World` (a `#[grove::state]` struct, hand-written `Default`) gained `turn_limit`,
    // and `Phase::Playing` (a `#[grove::state]` enum) gained `paused_at`. Without the
    // attribute this reload was refused with "missing field".
    let reloaded = module.reload(&counter("game_added"), &frame(42)).unwrap();
    assert_eq!(
        reloaded.format,
        StateFormat::SelfDescribing,
        "the shape changed"
    );
    let after = game::state(&mut module);
    assert_eq!(after, before, "every old value, every float bit, came back");
    let bytes = module.save_state().unwrap();
    let added: Added = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(
        added,
        Added {
            world: AddedWorld {
                turn_limit: 500,
                phase: AddedPhase::Playing {
                    level: 5,
                    since: 41,
                    paused_at: Vec::new(),
                },
            },
        },
        "the struct's field from the struct's `Default`, the variant's from its type's"
    );

    run(&mut module, 42..43);
    let state = game::state(&mut module);
    assert_eq!((state.count, state.total), (43, 43), "the new code runs");
}

#[test]
fn a_game_state_with_nested_enums_reloads_positionally_and_exactly() {
    let mut module = LoadedModule::load(counter("game")).unwrap();
    run(&mut module, 0..40);
    let before = game::state(&mut module);
    assert_eq!(before.world.units.len(), 7);
    assert_eq!(before.world.log.len(), 40);
    // Frame 39 left the wind with a negative zero and a NaN with a payload.
    assert_eq!(
        before.world.weather,
        Some(game::Weather::Wind(
            game::F32((-0.0f32).to_bits()),
            game::F32(0xffc0_0042)
        ))
    );

    let reloaded = module.reload(&counter("game_v2"), &frame(40)).unwrap();
    assert_eq!(
        reloaded.format,
        StateFormat::Positional,
        "same shape, nested enums and all: the fast path"
    );
    let after = game::state(&mut module);
    assert_eq!(after, before, "every value, every float bit, came back");

    run(&mut module, 40..41);
    let state = game::state(&mut module);
    assert_eq!(
        (state.count, state.total),
        (41, 40 + 2),
        "the new code runs"
    );
}
