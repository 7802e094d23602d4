//! A module crate linked in as an rlib runs through the same `Module` trait, next to a
//! loaded copy of the same crate.

use grove_runtime::{LoadedModule, StaticModule};
use tracing_subscriber::layer::SubscriberExt;

use crate::logs::Capture;
use crate::support::{counter, counter_state, frame, unpaced_engine};

#[test]
fn static_and_loaded_modules_run_side_by_side() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let mut linked = StaticModule::new("counter-static", counter::Counter::default());
        let mut loaded = LoadedModule::load(counter("v2")).unwrap();
        linked.init(&frame(0)).unwrap();
        for n in 0..4 {
            linked.process(&frame(n)).unwrap();
            loaded.process(&frame(n)).unwrap();
        }
        assert_eq!(counter_state(&mut loaded).total, 8, "loaded v2 counts by 2");
    });
    let ticks = capture.ticks();
    // Each module's events carry its name, static or loaded.
    let from = |module: &str| -> Vec<_> {
        ticks
            .iter()
            .filter(|t| t.fields.get("module").is_some_and(|m| m == module))
            .collect()
    };
    let (from_static, from_loaded) = (from("counter-static"), from("counter"));
    assert_eq!(from_static.len(), 4);
    assert_eq!(from_loaded.len(), 4);
    assert_eq!(
        from_static[3].fields["count"], "u64:4",
        "the static module has its own state"
    );
    assert_eq!(from_static[3].fields["variant"], "str:v1");
}

#[test]
fn a_panicking_static_module_is_contained() {
    struct Boom;
    impl grove::Module for Boom {
        fn process(&mut self, _ctx: &mut grove::Context) {
            panic!("static boom");
        }
    }
    let mut module = StaticModule::stateless("boom", Boom);
    let err = module.process(&frame(0)).unwrap_err();
    assert!(err.to_string().contains("static boom"), "{err}");
    assert!(
        matches!(err, grove_runtime::Error::Panicked { path: None, .. }),
        "a static module has no library: {err:?}"
    );
    assert!(!err.to_string().contains("library"), "{err}");
    assert!(module.fault().is_some());
}

#[test]
fn two_module_crates_link_into_one_binary() {
    // Both crates export a header and a create function; linking them together (which
    // this test binary does) works because the names carry the crate and the type.
    let mut engine = unpaced_engine();
    engine
        .add_static("counter", counter::Counter::default())
        .unwrap();
    engine
        .add_static("hello", hello_module::Hello::default())
        .unwrap();
    engine.run_frames(3);
    let stats = engine.stats();
    assert_eq!(stats.modules.len(), 2);
    assert!(stats.modules.iter().all(|m| m.frames == 3));
}

#[test]
fn a_host_reads_and_sets_a_static_modules_state_and_a_state_it_cannot_read_changes_nothing() {
    #[derive(serde::Serialize)]
    struct Set {
        count: u64,
        total: u32,
        name: String,
    }
    #[derive(serde::Serialize)]
    struct Wrong {
        count: &'static str,
    }
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Partial {
        count: u64,
    }
    let mut engine = unpaced_engine();
    engine
        .add_static("counter", counter::Counter::default())
        .unwrap();
    engine.run_frames(3);
    let state: crate::support::CounterState = engine.module_state("counter").unwrap();
    assert_eq!((state.count, state.total, &*state.name), (3, 3, "v1"));

    engine
        .set_module_state(
            "counter",
            &Set {
                count: 100,
                total: u32::MAX - 1,
                name: "set".into(),
            },
        )
        .unwrap();
    engine.run_frames(1);
    let state: crate::support::CounterState = engine.module_state("counter").unwrap();
    assert_eq!(
        (state.count, state.total, &*state.name),
        (101, u64::from(u32::MAX), "v1"),
        "the state set, then one frame of the module's code"
    );

    // A state holding some of the fields: the others take their default.
    engine
        .set_module_state("counter", &Partial { count: 7 })
        .unwrap();
    let state: crate::support::CounterState = engine.module_state("counter").unwrap();
    assert_eq!((state.count, state.total, &*state.name), (7, 0, ""));

    let error = engine
        .set_module_state("counter", &Wrong { count: "many" })
        .unwrap_err();
    assert!(
        matches!(&error, grove_runtime::Error::StateFailed { module, .. } if module == "counter"),
        "{error:?}"
    );
    assert!(error.to_string().contains("`count`"), "{error}");
    assert!(error.to_string().contains("unchanged"), "{error}");
    let kept: Partial = engine.module_state("counter").unwrap();
    assert_eq!(kept, Partial { count: 7 }, "the state it had");

    // A value too wide for the field is refused, not truncated.
    #[derive(serde::Serialize)]
    struct TooWide {
        total: u64,
    }
    let error = engine
        .set_module_state("counter", &TooWide { total: 1 << 40 })
        .unwrap_err();
    assert!(error.to_string().contains("`total`"), "{error}");
    assert_eq!(engine.module_state::<Partial>("counter").unwrap().count, 7);
}

#[test]
fn a_static_module_added_without_its_state_type_says_so() {
    let mut engine = unpaced_engine();
    engine
        .add_linked(
            StaticModule::stateless("quick", crate::support::Quick),
            None,
        )
        .unwrap();
    let error = engine
        .module_state::<serde_json::Value>("quick")
        .unwrap_err();
    assert!(
        matches!(&error, grove_runtime::Error::NoState { module } if module == "quick"),
        "{error:?}"
    );
    assert!(error.to_string().contains("add_static"), "{error}");
    let error = engine.set_module_state("quick", &1u8).unwrap_err();
    assert!(
        matches!(error, grove_runtime::Error::NoState { .. }),
        "{error:?}"
    );
}
