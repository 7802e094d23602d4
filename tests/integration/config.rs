//! Module configuration on real libraries (tests/fixtures/tuned): a config file in force
//! before the first `init` and applied live when saved, every kind of invalid config
//! refused with the file, line and field and the old config kept, partial updates, and the
//! config carried across reloads, including one that changes the config type.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use grove::abi::ConfigIssue;
use grove_runtime::{ConfigOrigin, Engine, EngineEvent, Error};
use serde_json::json;

use crate::support::{scratch_dir, tuned, unpaced_engine};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct TunedState {
    total: f64,
    frames: u64,
    init_step: f64,
}

fn state(engine: &mut Engine) -> TunedState {
    engine.module_state("tuned").unwrap()
}

/// Steps `engine` until an event `want` accepts arrives; panics after 20 s without one.
fn step_until(
    engine: &mut Engine,
    events: &Receiver<EngineEvent>,
    mut want: impl FnMut(&EngineEvent) -> bool,
) -> EngineEvent {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        engine.step();
        if let Some(event) = events.try_iter().find(&mut want) {
            return event;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no such event within 20 s");
}

/// Saves `text` to `path` as editors do: a new file renamed over the old one.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("tuned.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The refusal inside `error`, with where it was.
fn refusal(error: &Error) -> (String, &ConfigIssue) {
    match error {
        Error::ConfigRefused { at, issue, .. } => (at.to_string(), issue),
        other => panic!("not a config refusal: {other:?}"),
    }
}

#[test]
fn a_config_file_is_in_force_before_init_and_every_save_applies_between_frames() {
    let dir = scratch_dir();
    let path = config_file(&dir, "step = 5\n\n[emitter]\nrate = 2.5\n");
    let mut engine = unpaced_engine();
    let events = engine.subscribe();
    engine.config_file("tuned", &path).unwrap();
    engine.load_module(tuned("v1")).unwrap();
    assert_eq!(state(&mut engine).init_step, 5.0, "in force before init");
    engine.run_frames(2);
    assert_eq!(state(&mut engine).total, 10.0);
    assert_eq!(
        engine.config("tuned").unwrap(),
        json!({"step": 5, "label": "default", "emitter": {"rate": 2.5, "enabled": false}}),
        "every field, defaults included"
    );

    assert!(events.try_iter().any(|e| matches!(
        e,
        EngineEvent::Configured {
            origin: ConfigOrigin::File(_),
            ..
        }
    )));
    save(&path, "step = 7\nlabel = \"saved\"\n");
    step_until(
        &mut engine,
        &events,
        |e| matches!(e, EngineEvent::Configured { origin: ConfigOrigin::File(p), .. } if p.ends_with("tuned.toml")),
    );
    let before = state(&mut engine).total;
    engine.run_frames(1);
    assert_eq!(
        state(&mut engine).total,
        before + 7.0,
        "the saved step runs"
    );
    assert_eq!(engine.config("tuned").unwrap()["label"], "saved");

    // Written in place (truncate and write) rather than renamed over.
    std::fs::write(&path, "step = 9\n").unwrap();
    step_until(&mut engine, &events, |e| {
        matches!(e, EngineEvent::Configured { .. })
    });
    assert_eq!(engine.config("tuned").unwrap()["step"], 9);
    assert_eq!(
        engine.config("tuned").unwrap()["label"],
        "default",
        "a file is the whole config: what it does not give is the default"
    );
}

#[test]
fn a_broken_save_is_refused_with_its_line_and_the_config_in_force_stays() {
    let dir = scratch_dir();
    let path = config_file(&dir, "step = 3\n");
    let mut engine = unpaced_engine();
    let events = engine.subscribe();
    engine.load_module(tuned("v1")).unwrap();
    engine.config_file("tuned", &path).unwrap();
    assert_eq!(engine.config("tuned").unwrap()["step"], 3);

    save(&path, "step = 4\n[emitter]\nrate = \"fast\"\n");
    let event = step_until(&mut engine, &events, |e| {
        matches!(e, EngineEvent::ConfigRefused { .. })
    });
    let EngineEvent::ConfigRefused { module, error } = event else {
        unreachable!()
    };
    assert_eq!(module, "tuned");
    let (at, issue) = refusal(&error);
    assert!(at.ends_with("tuned.toml:3:1"), "{error}");
    assert_eq!(issue.field.to_string(), "emitter.rate");
    assert!(issue.message.contains("invalid type"), "{error}");
    assert!(
        error
            .to_string()
            .contains("the config in force is unchanged")
    );
    assert_eq!(
        engine.config("tuned").unwrap()["step"],
        3,
        "nothing half-applied"
    );
    let before = state(&mut engine).total;
    engine.run_frames(1);
    assert_eq!(state(&mut engine).total, before + 3.0);

    // Fixed: applied.
    save(&path, "step = 4\n[emitter]\nrate = 8.0\n");
    step_until(&mut engine, &events, |e| {
        matches!(e, EngineEvent::Configured { .. })
    });
    assert_eq!(engine.config("tuned").unwrap()["emitter"]["rate"], 8.0);
    let health = engine.health();
    let entry = health.module("tuned").unwrap();
    assert_eq!(entry.refused_configs, 1);
    assert!(
        entry
            .last_error
            .as_deref()
            .unwrap()
            .contains("emitter.rate")
    );
}

#[test]
fn each_kind_of_invalid_config_is_refused_naming_file_line_and_field() {
    let dir = scratch_dir();
    let mut engine = unpaced_engine();
    engine.load_module(tuned("v1")).unwrap();
    engine.configure("tuned", &json!({"step": 2})).unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        // (file, where, field, what)
        ("step = 2\nlabel = = 3\n", ":2:", "", "not valid TOML"),
        (
            "step = 2\nstpe = 3\n",
            ":2:1",
            "stpe",
            "unknown field; the fields here are",
        ),
        (
            "[emitter]\nenabled = 1\n",
            ":2:1",
            "emitter.enabled",
            "invalid type",
        ),
        ("label = \"x\"\nstep = 0\n", ":2:1", "step", "must not be 0"),
        ("label = \"panic\"\n", ".toml", "", "configure panicked"),
        ("gravity = nan\n", ":1:1", "gravity", "only finite numbers"),
        ("step = -4\n", ":1:1", "step", "invalid value"),
    ];
    for (i, (text, at, field, what)) in cases.iter().enumerate() {
        let path = dir.join(format!("case{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let error = engine.config_file("tuned", &path).unwrap_err();
        let (location, issue) = refusal(&error);
        assert!(location.contains(&format!("case{i}.toml")), "{error}");
        assert!(location.contains(at) || location.ends_with(at), "{error}");
        assert_eq!(issue.field.to_string(), *field, "{error}");
        assert!(issue.message.contains(what), "{error}");
        assert_eq!(engine.config("tuned").unwrap()["step"], 2, "{text}");
    }
    // The same kinds from code.
    let error = engine
        .configure("tuned", &json!({"emitter": {"rate": "x"}}))
        .unwrap_err();
    assert_eq!(refusal(&error).1.field.to_string(), "emitter.rate");
    let error = engine.configure("tuned", &json!({"step": 0})).unwrap_err();
    assert_eq!(refusal(&error).0, "set from code");
    let error = engine.configure("tuned", &json!([1, 2])).unwrap_err();
    assert!(refusal(&error).1.message.contains("table of fields"));
    assert!(matches!(
        engine.config_file("tuned", dir.join("missing.toml")),
        Err(Error::ConfigFile { .. })
    ));
    // The module still runs with the config it had.
    let before = state(&mut engine).total;
    engine.run_frames(2);
    assert_eq!(state(&mut engine).total, before + 4.0);
}

#[test]
fn a_partial_update_merges_into_the_config_in_force() {
    let mut engine = unpaced_engine();
    engine.load_module(tuned("v1")).unwrap();
    engine
        .configure(
            "tuned",
            &json!({"step": 6, "emitter": {"rate": 1.5, "enabled": true}}),
        )
        .unwrap();
    engine
        .configure_partial("tuned", &json!({"emitter": {"rate": 9.0}}))
        .unwrap();
    assert_eq!(
        engine.config("tuned").unwrap(),
        json!({"step": 6, "label": "default", "emitter": {"rate": 9.0, "enabled": true}})
    );
    let error = engine
        .configure_partial("tuned", &json!({"emitter": {"burst": 2}}))
        .unwrap_err();
    let (at, issue) = refusal(&error);
    assert_eq!(at, "partial update from code");
    assert_eq!(issue.field.to_string(), "emitter.burst");
    assert_eq!(engine.config("tuned").unwrap()["emitter"]["rate"], 9.0);

    #[derive(serde::Deserialize)]
    struct Rate {
        emitter: Emitter,
    }
    #[derive(serde::Deserialize)]
    struct Emitter {
        rate: f32,
    }
    assert_eq!(engine.config_as::<Rate>("tuned").unwrap().emitter.rate, 9.0);
}

#[test]
fn the_config_survives_reloads_and_a_change_of_its_type() {
    let dir = scratch_dir();
    let lib = dir.join("libtuned.so");
    std::fs::copy(tuned("v1"), &lib).unwrap();
    let mut engine = unpaced_engine();
    engine.load_module(&lib).unwrap();
    engine
        .configure(
            "tuned",
            &json!({"step": 3, "label": "kept", "emitter": {"rate": 1.5}}),
        )
        .unwrap();
    engine.run_frames(2);

    // Same code: the config is in force in the new version before its init.
    let reloaded = engine.reload("tuned").unwrap();
    assert!(reloaded.config_dropped.is_empty());
    assert_eq!(state(&mut engine).init_step, 3.0);
    assert_eq!(engine.config("tuned").unwrap()["label"], "kept");

    // A new config type: `step` is a float now (3 still fits), `label` is gone (dropped,
    // and said so), `burst` is new (its default).
    std::fs::copy(tuned("changed"), &lib).unwrap();
    let reloaded = engine.reload("tuned").unwrap();
    let dropped: Vec<String> = reloaded
        .config_dropped
        .iter()
        .map(|d| d.field.to_string())
        .collect();
    assert_eq!(dropped, ["label"]);
    assert_eq!(
        engine.config("tuned").unwrap(),
        json!({"step": 3.0, "burst": 7, "emitter": {"rate": 1.5, "enabled": false}})
    );
    assert_eq!(state(&mut engine).init_step, 3.0);

    // And back: `burst` is dropped, and a float `step` does not fit a `u64`: it keeps its
    // default, and the report says why.
    engine
        .configure_partial("tuned", &json!({"step": 2.5}))
        .unwrap();
    std::fs::copy(tuned("v1"), &lib).unwrap();
    let reloaded = engine.reload("tuned").unwrap();
    let dropped: Vec<(String, String)> = reloaded
        .config_dropped
        .iter()
        .map(|d| (d.field.to_string(), d.message.clone()))
        .collect();
    assert_eq!(dropped.len(), 2, "{dropped:?}");
    assert!(dropped.iter().any(|(f, _)| f == "burst"), "{dropped:?}");
    assert!(
        dropped
            .iter()
            .any(|(f, m)| f == "step" && m.contains("keeps its default")),
        "{dropped:?}"
    );
    assert_eq!(engine.config("tuned").unwrap()["step"], 1);
    assert_eq!(engine.config("tuned").unwrap()["emitter"]["rate"], 1.5);
}

#[test]
fn a_module_without_a_config_type_says_so() {
    let dir = scratch_dir();
    let path = config_file(&dir, "step = 2\n");
    let mut engine = unpaced_engine();
    engine.load_module(tuned("no_config")).unwrap();
    let error = engine.configure("tuned", &json!({"step": 2})).unwrap_err();
    assert!(matches!(error, Error::NoConfig { .. }), "{error:?}");
    assert!(error.to_string().contains("#[grove::module(config = "));
    assert!(matches!(
        engine.config("tuned"),
        Err(Error::NoConfig { .. })
    ));
    assert!(matches!(
        engine.config_file("tuned", &path),
        Err(Error::NoConfig { .. })
    ));
    engine.unload("tuned").unwrap();

    // A file given for a module before it loads applies at load; a module that takes no
    // config is then refused rather than run without the config it was given.
    let mut engine = unpaced_engine();
    engine.config_file("tuned", &path).unwrap();
    let error = engine.load_module(tuned("no_config")).unwrap_err();
    assert!(matches!(error, Error::NoConfig { .. }), "{error:?}");
    assert!(engine.module_names().is_empty());
    engine.load_module(tuned("v1")).unwrap();
    assert_eq!(engine.config("tuned").unwrap()["step"], 2);
}

#[test]
fn a_static_module_takes_its_config_as_a_loaded_one_does() {
    let dir = scratch_dir();
    let path = config_file(&dir, "step = 4\n");
    let mut engine = unpaced_engine();
    engine.config_file("tuned", &path).unwrap();
    engine
        .add_static_configured("tuned", tuned::Tuned::default())
        .unwrap();
    engine.run_frames(2);
    assert_eq!(engine.config("tuned").unwrap()["step"], 4);
    let error = engine.configure("tuned", &json!({"step": 0})).unwrap_err();
    assert_eq!(refusal(&error).1.field.to_string(), "step");
    engine
        .configure_partial("tuned", &json!({"step": 300}))
        .unwrap();
    let report = engine.health();
    let entry = report.module("tuned").unwrap();
    assert_eq!(entry.generation, 0);
    assert_eq!(
        entry.report.as_ref().unwrap().metrics(),
        [("step".to_owned(), 300.0)]
    );

    // Added without its config: it says so, as a loaded module without one does.
    let mut engine = unpaced_engine();
    engine.add_static("plain", tuned::Tuned::default()).unwrap();
    assert!(matches!(
        engine.configure("plain", &json!({"step": 2})),
        Err(Error::NoConfig { .. })
    ));
}

#[test]
fn an_emptied_file_is_not_applied_until_it_is_written() {
    let dir = scratch_dir();
    let path = config_file(&dir, "step = 6\n");
    let mut engine = unpaced_engine();
    let events = engine.subscribe();
    engine.load_module(tuned("v1")).unwrap();
    engine.config_file("tuned", &path).unwrap();
    let _applied_now = events.try_iter().count();
    // Truncated, as an editor does before writing, then written a moment later.
    std::fs::write(&path, "").unwrap();
    let until = Instant::now() + Duration::from_millis(400);
    while Instant::now() < until {
        engine.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        engine.config("tuned").unwrap()["step"],
        6,
        "the config in force stays"
    );
    assert!(
        !events
            .try_iter()
            .any(|e| matches!(e, EngineEvent::Configured { .. }))
    );
    std::fs::write(&path, "step = 8\n").unwrap();
    step_until(&mut engine, &events, |e| {
        matches!(e, EngineEvent::Configured { .. })
    });
    assert_eq!(engine.config("tuned").unwrap()["step"], 8);
}
