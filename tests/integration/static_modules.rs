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
    let from_static: Vec<_> = ticks
        .iter()
        .filter(|t| !t.fields.contains_key("module"))
        .collect();
    let from_loaded: Vec<_> = ticks
        .iter()
        .filter(|t| t.fields.contains_key("module"))
        .collect();
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
    let mut module = StaticModule::new("boom", Boom);
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
