//! A panic in any of a module's functions is contained, reported with the module's name,
//! and loses nothing.

use grove_runtime::{Call, Error, LoadedModule};

use crate::support::{counter, counter_state, frame};

fn assert_panicked(err: &Error, call: Call) {
    let inner = match err {
        Error::ReloadRefused { source, .. } => source.as_ref(),
        other => other,
    };
    match inner {
        Error::Panicked {
            module,
            call: c,
            message,
            path,
        } => {
            assert_eq!(module, "counter");
            assert!(
                path.as_ref()
                    .is_some_and(|p| p.to_string_lossy().contains("libcounter")),
                "the library is named: {path:?}"
            );
            assert_eq!(*c, call);
            assert!(
                message.contains(&format!("fixture panics in {call}")),
                "{message}"
            );
            assert!(message.contains("lib.rs:"), "location included: {message}");
        }
        other => panic!("expected a panic in {call}, got {other:?}"),
    }
}

#[test]
fn panic_in_create_or_init_fails_the_load() {
    let err = LoadedModule::load(counter("panic_create")).unwrap_err();
    assert_panicked(&err, Call::Create);
    let err = LoadedModule::load(counter("panic_init")).unwrap_err();
    assert_panicked(&err, Call::Init);
}

#[test]
fn panic_in_process_faults_the_module_until_a_fixed_version_loads() {
    let mut module = LoadedModule::load(counter("panic_process")).unwrap();
    for n in 0..3 {
        module.process(&frame(n)).unwrap();
    }
    let err = module.process(&frame(3)).unwrap_err();
    assert_panicked(&err, Call::Process);
    assert!(module.fault().is_some());
    assert!(matches!(
        module.process(&frame(4)),
        Err(Error::Faulted { .. })
    ));

    module.reload(&counter("v1"), &frame(5)).unwrap();
    assert!(module.fault().is_none());
    module.process(&frame(5)).unwrap();
    assert_eq!(
        counter_state(&mut module).count,
        4,
        "3 frames before the panic, 1 after"
    );
}

#[test]
fn panic_in_init_or_load_state_of_the_new_version_refuses_the_reload() {
    for (variant, call) in [("panic_init", Call::Init), ("panic_load", Call::LoadState)] {
        let mut module = LoadedModule::load(counter("v1")).unwrap();
        module.process(&frame(0)).unwrap();
        let err = module.reload(&counter(variant), &frame(1)).unwrap_err();
        assert_panicked(&err, call);
        assert_eq!(module.generation(), 1);
        module.process(&frame(1)).unwrap();
        assert_eq!(
            counter_state(&mut module).count,
            2,
            "old version kept running"
        );
    }
}

#[test]
fn panic_in_save_state_refuses_the_reload() {
    let mut module = LoadedModule::load(counter("panic_save")).unwrap();
    module.process(&frame(0)).unwrap();
    let err = module.reload(&counter("v1"), &frame(1)).unwrap_err();
    assert_panicked(&err, Call::SaveState);
    module.process(&frame(1)).unwrap();
    assert_eq!(module.generation(), 1);
}

#[test]
fn panic_in_shutdown_is_reported() {
    let module = LoadedModule::load(counter("panic_shutdown")).unwrap();
    let err = module.shutdown(&frame(0)).unwrap_err();
    assert_panicked(&err, Call::Shutdown);
}

#[test]
fn panic_in_destroy_does_not_stop_the_reload() {
    let mut module = LoadedModule::load(counter("panic_destroy")).unwrap();
    module.process(&frame(0)).unwrap();
    let reloaded = module.reload(&counter("v1"), &frame(1)).unwrap();
    assert_eq!(reloaded.generation, 2);
    module.process(&frame(1)).unwrap();
    assert_eq!(counter_state(&mut module).count, 2);
}
