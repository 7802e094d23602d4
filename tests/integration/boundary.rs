//! The module boundary holds: tables of other sizes on both sides, libraries refused from
//! their header before any of their code runs, threads that outlive their library, and a
//! library detached before it is let go.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use grove::state::StateFormat;
use grove_runtime::{Error, LoadedModule, Unmapped};
use serde::Deserialize;

use crate::support::{
    assert_child_ok, chatter, counter, counter_state, frame, is_child, rogue, scratch_dir,
};

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct RogueState {
    count: u64,
}

fn rogue_count(module: &mut LoadedModule) -> u64 {
    let bytes = module.save_state().unwrap();
    rmp_serde::from_slice::<RogueState>(&bytes).unwrap().count
}

#[test]
fn a_panic_abort_library_is_refused_before_it_runs() {
    let err = LoadedModule::load(rogue("panic_abort")).unwrap_err();
    assert!(matches!(err, Error::PanicAbort { .. }), "{err:?}");
    let message = err.to_string();
    for says in [
        "module `rogue`",
        "panic = \"abort\"",
        "end this host process",
        "[profile",
        "librogue-panic_abort.so",
    ] {
        assert!(message.contains(says), "{says:?} not in: {message}");
    }
}

#[test]
fn a_library_the_dynamic_loader_refuses_says_what_the_loader_said() {
    let path = rogue("undefined_symbol");
    let err = LoadedModule::load(&path).unwrap_err();
    assert!(matches!(err, Error::Open { .. }), "{err:?}");
    let message = err.to_string();
    for says in [
        "librogue-undefined_symbol.so",
        "staged as",
        "undefined symbol: grove_fixture_nowhere",
        "needs a symbol this process does not provide",
    ] {
        assert!(message.contains(says), "{says:?} not in: {message}");
    }
}

/// Child side of `a_change_of_the_host_filter_reaches_loaded_modules`.
#[test]
#[ignore = "run in a child process by the test of the same name without `child_`"]
fn child_host_filter_changes() {
    assert!(is_child());
    use tracing_subscriber::layer::SubscriberExt;
    let counting = Counting::default();
    let (filter, handle) =
        tracing_subscriber::reload::Layer::new(tracing_subscriber::filter::LevelFilter::WARN);
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(counting.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let mut module = LoadedModule::load(counter("v1")).unwrap();
    for n in 0..3 {
        module.process(&frame(n)).unwrap();
    }
    assert_eq!(
        counting.ticks.load(Ordering::Relaxed),
        0,
        "info is off at WARN"
    );
    handle
        .reload(tracing_subscriber::filter::LevelFilter::INFO)
        .unwrap();
    for n in 3..6 {
        module.process(&frame(n)).unwrap();
    }
    assert_eq!(
        counting.ticks.load(Ordering::Relaxed),
        3,
        "info is on at INFO"
    );
    handle
        .reload(tracing_subscriber::filter::LevelFilter::ERROR)
        .unwrap();
    module.process(&frame(6)).unwrap();
    assert_eq!(counting.ticks.load(Ordering::Relaxed), 3, "and off again");
    println!("CHILD OK");
}

#[test]
fn a_change_of_the_host_filter_reaches_loaded_modules() {
    assert_child_ok("boundary::child_host_filter_changes", &[], "CHILD OK");
}

#[test]
fn another_module_at_the_path_is_refused_before_its_constructors_run() {
    // The intruder's library aborts the process from a constructor: opening it would end
    // this test binary.
    let mut module = LoadedModule::load(counter("v1")).unwrap();
    module.process(&frame(0)).unwrap();
    let err = module
        .reload(&rogue("other_module"), &frame(1))
        .unwrap_err();
    let message = err.to_string();
    let Error::ReloadRefused { source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(matches!(**source, Error::WrongModule { .. }), "{source:?}");
    assert!(
        message.contains("intruder (Intruder)") && message.contains("counter (Counter)"),
        "{message}"
    );
    module.process(&frame(1)).unwrap();
    assert_eq!(
        counter_state(&mut module).count,
        2,
        "the running version kept going"
    );
}

#[test]
fn modules_with_older_and_newer_tables_load_run_and_reload() {
    for variant in [
        "old_tables",
        "prev_tables",
        "no_report",
        "no_save_into",
        "new_tables",
    ] {
        let path = rogue(variant);
        let mut module = LoadedModule::load(&path).unwrap();
        for n in 0..3 {
            module.process(&frame(n)).unwrap();
        }
        let reloaded = module.reload(&path, &frame(3)).unwrap();
        assert_eq!(reloaded.generation, 2, "{variant}");
        // The state went across positionally, saved in place into the host's buffer or
        // (before `save_state_into`) handed over in the module's and copied: the count,
        // eight bytes, either way.
        assert_eq!(reloaded.format, StateFormat::Positional, "{variant}");
        assert_eq!(reloaded.state_bytes, 8, "{variant}");
        // A library without `restore_state` reports nothing, and the host says so.
        let reports = matches!(variant, "new_tables" | "no_save_into");
        assert_eq!(
            reloaded.fields.is_some(),
            reports,
            "{variant}: {reloaded:?}"
        );
        if !reports {
            assert_eq!(
                reloaded.state_summary(),
                "no field report from this module (built with an older grove-sdk)"
            );
        }
        module.process(&frame(3)).unwrap();
        assert_eq!(rogue_count(&mut module), 4, "{variant}: state kept");
        assert_eq!(
            reloaded.old_library,
            Unmapped::Yes,
            "{variant}: unmapped without a detach entry"
        );
        module.shutdown(&frame(4)).unwrap();

        // Through an engine: the entries the library was built without are features off,
        // said plainly, not calls into memory past its table.
        let mut engine = crate::support::unpaced_engine();
        engine.load_module(&path).unwrap();
        engine.run_frames(2);
        let health = engine.health();
        let entry = health.module("rogue").unwrap();
        assert_eq!(
            entry.report.is_some(),
            matches!(variant, "new_tables" | "no_report" | "no_save_into"),
            "{variant}: a report only from a library with the health hook"
        );
        assert_eq!(entry.status(), grove::HealthStatus::Healthy, "{variant}");
        if !matches!(variant, "new_tables" | "no_save_into") {
            assert!(
                matches!(
                    engine.configure("rogue", &serde_json::json!({})),
                    Err(grove_runtime::Error::NoConfig { .. })
                ),
                "{variant}"
            );
        }
        assert_eq!(engine.reload("rogue").unwrap().generation, 2, "{variant}");
    }
}

/// A subscriber counting the events that reach the host, by message.
#[derive(Default, Clone)]
struct Counting {
    from_thread: Arc<AtomicUsize>,
    ticks: Arc<AtomicUsize>,
    /// Ticks seen inside the module's span `frame`.
    ticks_in_span: Arc<AtomicUsize>,
}

impl<S> tracing_subscriber::Layer<S> for Counting
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        match message.0.as_str() {
            "rogue thread logs" => self.from_thread.fetch_add(1, Ordering::Relaxed),
            "tick" => self.ticks.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        if message.0 == "tick" && ctx.event_span(event).is_some_and(|s| s.name() == "frame") {
            self.ticks_in_span.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Child side of `a_thread_logging_after_its_library_is_replaced_reaches_no_freed_memory`.
#[test]
#[ignore = "run in a child process by the test of the same name without `child_`"]
fn child_logging_thread_survives_30_reloads() {
    assert!(is_child());
    use tracing_subscriber::layer::SubscriberExt;
    let counting = Counting::default();
    let subscriber = tracing_subscriber::registry().with(counting.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let dir = scratch_dir();
    let path = dir.join("librogue.so");
    std::fs::copy(rogue("v1"), &path).unwrap();
    let mut module = LoadedModule::load(&path).unwrap();
    let mut kept = 0;
    for n in 0..30 {
        module.process(&frame(n)).unwrap();
        let reloaded = module.reload(&path, &frame(n)).unwrap();
        match &reloaded.old_library {
            Unmapped::ThreadsRunning(threads) => {
                assert!(
                    threads.iter().any(|t| t.name == "rogue-logger"),
                    "{threads:?}"
                );
                kept += 1;
            }
            other => panic!("reload {n}: the logging thread was not seen: {other:?}"),
        }
        // Let the retired libraries' threads log into their detached forwarders.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let before = counting.from_thread.load(Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let after = counting.from_thread.load(Ordering::Relaxed);
    assert!(
        after > before,
        "the live version's thread still logs to the host"
    );
    // 31 threads run; only the live library is attached: at most ~1 event a millisecond.
    assert!(
        after - before < 300,
        "retired libraries still reach the host: {} events in 100 ms",
        after - before
    );
    println!("CHILD OK kept={kept}");
}

#[test]
fn a_thread_logging_after_its_library_is_replaced_reaches_no_freed_memory() {
    assert_child_ok(
        "boundary::child_logging_thread_survives_30_reloads",
        &[("ROGUE_ACTION", "log_thread")],
        "CHILD OK kept=30",
    );
}

/// Child side of `threads_started_per_init_keep_every_old_library_mapped`.
#[test]
#[ignore = "run in a child process by the test of the same name without `child_`"]
fn child_thread_per_init_100_reloads() {
    assert!(is_child());
    let dir = scratch_dir();
    let path = dir.join("librogue.so");
    std::fs::copy(rogue("v1"), &path).unwrap();
    let mut module = LoadedModule::load(&path).unwrap();
    let mut threads_reported = 0;
    for n in 0..100 {
        module.process(&frame(n)).unwrap();
        let reloaded = module.reload(&path, &frame(n)).unwrap();
        let Unmapped::ThreadsRunning(threads) = &reloaded.old_library else {
            panic!("reload {n}: {:?}", reloaded.old_library);
        };
        assert_eq!(
            threads.len(),
            1,
            "reload {n}: only the retired library's own thread"
        );
        assert_eq!(threads[0].name, "rogue-sleeper");
        threads_reported += threads.len();
    }
    module.process(&frame(100)).unwrap();
    assert_eq!(
        rogue_count(&mut module),
        101,
        "state carried through every reload"
    );
    println!("CHILD OK threads={threads_reported}");
}

#[test]
fn threads_started_per_init_keep_every_old_library_mapped() {
    assert_child_ok(
        "boundary::child_thread_per_init_100_reloads",
        &[("ROGUE_ACTION", "sleep_thread")],
        "CHILD OK threads=100",
    );
}

/// Child side of `hosts_with_older_and_newer_tables_are_accepted`.
#[test]
#[ignore = "run in a child process by the test of the same name without `child_`"]
fn child_host_table_of_another_size() {
    assert!(is_child());
    use tracing_subscriber::layer::SubscriberExt;
    let size: usize = std::env::var("HOST_API_SIZE").unwrap().parse().unwrap();
    grove_runtime::bench_support::set_test_api_size(Some(size));
    let counting = Counting::default();
    let subscriber = tracing_subscriber::registry().with(counting.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let mut module = LoadedModule::load(counter("v1")).unwrap();
    for n in 0..5 {
        module.process(&frame(n)).unwrap();
    }
    let reloaded = module.reload(&counter("v2"), &frame(5)).unwrap();
    module.process(&frame(5)).unwrap();
    assert_eq!(reloaded.old_library, Unmapped::Yes);
    assert_eq!(counter_state(&mut module).count, 6);
    assert_eq!(
        counting.ticks.load(Ordering::Relaxed),
        6,
        "every tick logged"
    );
    // A host without the span entries: the module's spans are not forwarded, and its
    // events arrive all the same.
    let has_spans = size >= size_of::<grove::abi::HostApi>();
    assert_eq!(
        counting.ticks_in_span.load(Ordering::Relaxed),
        if has_spans { 6 } else { 0 },
        "ticks inside the module's span, with a host table of {size} bytes"
    );

    // A module that uses the bus: under a host without the bus entries its publications
    // and subscriptions are errors it can read, and nothing else changes.
    let has_bus = size >= grove::abi::HOST_API_SIZE_BEFORE_SPANS;
    let mut engine = crate::support::unpaced_engine();
    engine
        .load_module(crate::support::chatter("consumer"))
        .unwrap();
    engine
        .configure("consumer", &serde_json::json!({"subscribe": ["count:*"]}))
        .unwrap();
    engine.load_module(crate::support::chatter("v1")).unwrap();
    engine
        .configure(
            "producer",
            &serde_json::json!({"topic": "count:tick", "per_frame": 2}),
        )
        .unwrap();
    engine.run_frames(3);
    #[derive(serde::Deserialize)]
    struct Chatter {
        sent: u64,
        received: Vec<(u64, u64, u64, String)>,
        bus_errors: Vec<String>,
    }
    let producer: Chatter = engine.module_state("producer").unwrap();
    let consumer: Chatter = engine.module_state("consumer").unwrap();
    if has_bus {
        assert!(producer.bus_errors.is_empty(), "{:?}", producer.bus_errors);
        assert_eq!(consumer.received.len(), 4);
    } else {
        assert!(
            producer
                .bus_errors
                .iter()
                .all(|e| e.contains("no message bus")),
            "{:?}",
            producer.bus_errors
        );
        assert_eq!(producer.bus_errors.len(), 6);
        assert_eq!(consumer.bus_errors.len(), 1, "its subscription");
        assert!(consumer.received.is_empty());
    }
    assert_eq!(producer.sent, 6);
    println!("CHILD OK");
}

#[test]
fn hosts_with_older_and_newer_tables_are_accepted() {
    // The children use the fixtures the parent built.
    let _ = (chatter("v1"), chatter("consumer"));
    let sizes = [
        grove::abi::HOST_API_MIN_SIZE_V1,
        // An older SDK's host: logging, no bus entries.
        grove::abi::HOST_API_SIZE_BEFORE_SPANS - 5 * size_of::<usize>(),
        // The previous SDK's host: logging and the bus, no span entries.
        grove::abi::HOST_API_SIZE_BEFORE_SPANS,
        size_of::<grove::abi::HostApi>(),
        // A newer host: the module must not read past the entries it knows.
        size_of::<grove::abi::HostApi>() + 64,
    ];
    for size in sizes {
        assert_child_ok(
            "boundary::child_host_table_of_another_size",
            &[("HOST_API_SIZE", &size.to_string())],
            "CHILD OK",
        );
    }
}
