//! Modules come and go while the engine runs, and what the engine says about them stays
//! true: unloading, loading again, a duplicate name refused before its code runs, figures
//! after `run` returns, and a refused reload of a faulted module.

use std::time::Duration;

use grove_runtime::{Engine, EngineEvent, Error, StaticModule, Unmapped};

use crate::support::{Quick, counter, frame, unpaced_engine};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Count {
    count: u64,
}

#[test]
fn a_duplicate_name_is_refused_before_any_of_its_code_runs() {
    let mut engine = unpaced_engine();
    engine.load_module(counter("v1")).unwrap();
    engine.run_frames(2);
    // This variant panics in `init`: had its code run, the error would be that panic.
    let err = engine.load_module(counter("panic_init")).unwrap_err();
    assert!(matches!(err, Error::DuplicateModule { .. }), "{err:?}");
    assert_eq!(engine.module_names(), ["counter"]);
    engine.run_frames(1);
    assert_eq!(engine.module_state::<Count>("counter").unwrap().count, 3);
}

#[test]
fn an_unloaded_module_is_gone_and_can_be_loaded_again() {
    let mut engine = Engine::builder().target_fps(0.0).build().unwrap(); // watching its file
    let events = engine.subscribe();
    engine.load_module(counter("v1")).unwrap();
    engine
        .add_linked(StaticModule::stateless("quick", Quick), None)
        .unwrap();
    engine.run_frames(4);
    let unmapped = engine.unload("counter").unwrap();
    assert_eq!(unmapped, Some(Unmapped::Yes), "its library left memory");
    assert_eq!(engine.module_names(), ["quick"]);
    assert!(events.try_iter().any(|e| matches!(
        &e,
        EngineEvent::Unloaded { module, old_library: Some(Unmapped::Yes) } if module == "counter"
    )));
    assert!(matches!(
        engine.unload("counter"),
        Err(Error::UnknownModule { .. })
    ));
    engine.run_frames(2);
    assert_eq!(engine.stats().modules.len(), 1);

    engine.load_module(counter("v1")).unwrap();
    engine.run_frames(3);
    assert_eq!(engine.generation("counter").unwrap(), 1);
    assert_eq!(
        engine.module_state::<Count>("counter").unwrap().count,
        3,
        "a new start, not the old state"
    );
    assert_eq!(
        engine.unload("quick").unwrap(),
        None,
        "a static module has no library"
    );
}

#[test]
fn a_panic_in_shutdown_is_returned_and_the_module_is_gone_all_the_same() {
    let mut engine = unpaced_engine();
    engine.load_module(counter("panic_shutdown")).unwrap();
    engine.run_frames(1);
    let err = engine.unload("counter").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Panicked {
                call: grove_runtime::Call::Shutdown,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(engine.module_names().is_empty());
}

#[test]
fn figures_stay_readable_after_run_returns() {
    let mut engine = Engine::builder()
        .target_fps(200.0)
        .watch_files(false)
        .build()
        .unwrap();
    engine.load_module(counter("v1")).unwrap();
    engine.reload("counter").unwrap();
    let stop = engine.stop_handle();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        stop.stop();
    });
    engine.run().unwrap();
    let stats = engine.stats();
    assert_eq!(stats.modules.len(), 1, "{stats:?}");
    assert!(stats.modules[0].frames > 0, "{stats:?}");
    assert_eq!(stats.modules[0].name, "counter");
    assert_eq!(engine.generation("counter").unwrap(), 2);
}

#[test]
fn a_refused_reload_of_a_faulted_module_says_it_stays_faulted() {
    let mut module = grove_runtime::LoadedModule::load(counter("panic_process")).unwrap();
    for n in 0..4 {
        let _ = module.process(&frame(n)); // panics in frame 3
    }
    assert!(module.fault().is_some());
    let err = module
        .reload(&counter("incompatible"), &frame(4))
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("generation 1 stays faulted") && !message.contains("keeps running"),
        "{message}"
    );
}

#[test]
fn a_refused_library_is_tried_again_once_what_was_wrong_is_fixed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = crate::support::scratch_dir();
    let (mut engine, events, path) = crate::support::engine_on_copy(&dir, 0.0);
    engine.run_frames(2);
    // A new build arrives world-writable: refused.
    let fresh = dir.join("libcounter.so.new");
    std::fs::copy(counter("v2"), &fresh).unwrap();
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::rename(&fresh, &path).unwrap();
    let step_until = |engine: &mut Engine, want: &dyn Fn(&EngineEvent) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            engine.step();
            if events.try_iter().any(|e| want(&e)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    };
    assert!(step_until(&mut engine, &|e| matches!(
        e,
        EngineEvent::ReloadRefused { error, .. } if error.to_string().contains("world-writable")
    )));
    // The fix the message asks for, with the same content: it is tried again.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(step_until(&mut engine, &|e| matches!(
        e,
        EngineEvent::Reloaded(_)
    )));
    assert_eq!(engine.generation("counter").unwrap(), 2);
}
