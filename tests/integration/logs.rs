//! A loaded module's `tracing` events reach the host's subscriber with their level, target
//! and fields, and the module's name.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use grove_runtime::LoadedModule;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

use crate::support::{counter, frame};

#[derive(Debug, Clone)]
pub struct Captured {
    pub level: tracing::Level,
    pub target: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<Captured>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0
            .insert(field.name().to_owned(), format!("u64:{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0
            .insert(field.name().to_owned(), format!("bool:{value}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), format!("str:{value}"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }
}

impl Capture {
    pub fn ticks(&self) -> Vec<Captured> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.fields.get("message").is_some_and(|m| m == "tick"))
            .cloned()
            .collect()
    }
}

#[test]
fn module_events_reach_the_host_subscriber() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let mut module = LoadedModule::load(counter("v1")).unwrap();
        for n in 0..3 {
            module.process(&frame(n)).unwrap();
        }
        module.reload(&counter("v2"), &frame(3)).unwrap();
        module.process(&frame(3)).unwrap();
    });
    let ticks = capture.ticks();
    assert_eq!(ticks.len(), 4, "{ticks:#?}");
    let first = &ticks[0];
    assert_eq!(first.level, tracing::Level::INFO);
    assert_eq!(first.target, "counter", "the module's own target");
    assert_eq!(first.fields["count"], "u64:1", "typed field");
    assert_eq!(first.fields["ready"], "bool:true");
    assert_eq!(first.fields["variant"], "str:v1");
    assert_eq!(first.fields["module"], "counter", "the module's name");
    assert_eq!(
        ticks[3].fields["variant"], "str:v2",
        "logs keep working after a reload"
    );
    assert_eq!(ticks[3].fields["count"], "u64:4");
}

#[test]
fn host_filters_apply_to_module_events() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(
        capture
            .clone()
            .with_filter(tracing_subscriber::filter::LevelFilter::WARN),
    );
    tracing::subscriber::with_default(subscriber, || {
        let mut module = LoadedModule::load(counter("v1")).unwrap();
        module.process(&frame(0)).unwrap();
    });
    assert!(
        capture.ticks().is_empty(),
        "INFO events filtered out by the host"
    );
}
