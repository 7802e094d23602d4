//! Health on real libraries: a module's own report (degraded, failed: an event), a faulted
//! module, the engine's figures next to them, JSON, and the report after `run` returns.

use grove::HealthStatus;
use grove_runtime::{Engine, EngineEvent, StaticModule};
use serde_json::json;

use crate::support::{Quick, counter, tuned, unpaced_engine};

#[test]
fn a_module_reports_degraded_and_failed_and_a_change_is_an_event() {
    let mut engine = unpaced_engine();
    let events = engine.subscribe();
    engine.load_module(tuned("v1")).unwrap();
    engine
        .add_linked(StaticModule::stateless("quick", Quick), None)
        .unwrap();
    engine.run_frames(3);
    let report = engine.health();
    assert_eq!(report.worst(), HealthStatus::Healthy);
    let tuned_health = report.module("tuned").unwrap();
    let own = tuned_health.report.as_ref().expect("asked");
    assert_eq!(own.metrics(), [("frames".to_owned(), 3.0)]);
    assert_eq!(tuned_health.generation, 1);
    assert_eq!(tuned_health.frames, 3);
    assert!(tuned_health.process_p50_us > 0.0);
    assert!(tuned_health.process_p99_us >= tuned_health.process_p50_us);
    assert_eq!(
        report
            .module("quick")
            .unwrap()
            .report
            .as_ref()
            .unwrap()
            .status(),
        HealthStatus::Healthy,
        "a module without a health hook is healthy"
    );
    assert!(
        !events
            .try_iter()
            .any(|e| matches!(e, EngineEvent::HealthChanged { .. })),
        "healthy from the start is no news"
    );

    engine.configure("tuned", &json!({"step": 200})).unwrap();
    let report = engine.health();
    let own = report.module("tuned").unwrap().report.clone().unwrap();
    assert_eq!(own.status(), HealthStatus::Degraded);
    assert_eq!(own.message(), "step above 100");
    assert_eq!(own.metrics(), [("step".to_owned(), 200.0)]);
    assert_eq!(report.worst(), HealthStatus::Degraded);
    assert!(events.try_iter().any(|e| matches!(
        e,
        EngineEvent::HealthChanged { module, previous: Some(HealthStatus::Healthy), health }
            if module == "tuned" && health.status() == HealthStatus::Degraded
    )));

    // Failed, noticed by the engine's own polling while it runs frames.
    engine
        .configure("tuned", &json!({"step": 1, "label": "fail"}))
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let event = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no HealthChanged event"
        );
        engine.step();
        std::thread::sleep(std::time::Duration::from_millis(5));
        if let Some(event) = events
            .try_iter()
            .find(|e| matches!(e, EngineEvent::HealthChanged { .. }))
        {
            break event;
        }
    };
    let EngineEvent::HealthChanged {
        previous, health, ..
    } = &event
    else {
        unreachable!()
    };
    assert_eq!(*previous, Some(HealthStatus::Degraded));
    assert_eq!(health.status(), HealthStatus::Failed);
    assert!(
        event.to_string().contains("failed: told to fail"),
        "{event}"
    );

    // Served as JSON.
    let json = serde_json::to_value(engine.health()).unwrap();
    let entry = &json["modules"][0];
    assert_eq!(entry["module"], "tuned");
    assert_eq!(entry["report"]["status"], "failed");
    assert_eq!(entry["report"]["message"], "told to fail");
    assert_eq!(entry["faulted"], false);
}

#[test]
fn a_faulted_module_is_failed_with_its_panic_and_reload_figures() {
    let dir = crate::support::scratch_dir();
    let lib = dir.join("libcounter.so");
    std::fs::copy(counter("panic_process"), &lib).unwrap();
    let mut engine = unpaced_engine();
    engine.load_module(&lib).unwrap();
    engine.run_frames(5); // it panics in frame 3
    let report = engine.health();
    let entry = report.module("counter").unwrap();
    assert!(entry.faulted);
    assert_eq!(entry.status(), HealthStatus::Failed);
    assert!(
        entry
            .last_error
            .as_deref()
            .unwrap()
            .contains("fixture panics in process"),
        "{entry:?}"
    );

    // A refused reload, then one that takes over.
    std::fs::copy(counter("incompatible"), &lib).unwrap();
    engine.reload("counter").unwrap_err();
    std::fs::copy(counter("v1"), &lib).unwrap();
    engine.reload("counter").unwrap();
    engine.run_frames(1);
    let report = engine.health();
    let entry = report.module("counter").unwrap();
    assert!(!entry.faulted);
    assert_eq!((entry.reloads, entry.refused_reloads), (1, 1));
    assert_eq!(entry.generation, 2);
    assert!(
        entry.last_error.as_deref().unwrap().contains("refused"),
        "the last thing that went wrong stays: {entry:?}"
    );
    assert_eq!(entry.status(), HealthStatus::Healthy);
}

#[test]
fn health_stays_readable_after_the_engine_stops() {
    let mut engine = Engine::builder().target_fps(0.0).build().unwrap();
    engine.load_module(tuned("v1")).unwrap();
    engine.configure("tuned", &json!({"step": 500})).unwrap();
    let stop = engine.stop_handle();
    let mut frames = 0;
    engine
        .run_with(|_| {
            frames += 1;
            if frames == 5 {
                stop.stop();
            }
        })
        .unwrap();
    let report = engine.health();
    let entry = report
        .module("tuned")
        .expect("the module as it was shut down");
    assert_eq!(entry.frames, 5);
    assert_eq!(
        entry.report.as_ref().map(|h| h.status()),
        Some(HealthStatus::Degraded)
    );
}

#[test]
fn a_health_hook_that_panics_reports_failed() {
    let mut engine = unpaced_engine();
    let events = engine.subscribe();
    engine.load_module(tuned("v1")).unwrap();
    engine.run_frames(2);
    engine
        .configure("tuned", &json!({"label": "panic_health"}))
        .unwrap();
    let report = engine.health();
    let entry = report.module("tuned").unwrap();
    assert_eq!(entry.status(), HealthStatus::Failed);
    let own = entry.report.as_ref().unwrap();
    assert!(own.message().contains("fixture panics in health"), "{own}");
    assert!(events.try_iter().any(|e| matches!(
        e,
        EngineEvent::HealthChanged { health, .. } if health.status() == HealthStatus::Failed
    )));
    assert!(
        !entry.faulted,
        "a panic in the health hook does not fault the module"
    );
    engine.run_frames(1);
    assert_eq!(engine.health().module("tuned").unwrap().frames, 3);
    let json = serde_json::to_value(engine.health()).unwrap();
    assert_eq!(
        json["modules"][0]["status"], "failed",
        "a status at the top, for monitors"
    );
}
