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

/// What a `tracing_subscriber::fmt` subscriber writes, kept.
#[derive(Clone, Default)]
struct Written(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Written {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The lines an fmt subscriber (no time, no colours) writes while `run` runs.
fn fmt_lines(run: impl FnOnce()) -> Vec<String> {
    let written = Written::default();
    let sink = written.clone();
    let subscriber = tracing_subscriber::fmt()
        .without_time()
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_owned).collect()
}

fn tick_lines(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.contains(" tick ")).collect()
}

#[test]
fn a_static_and_a_loaded_module_log_the_same_lines_spans_included() {
    let from_static = fmt_lines(|| {
        let mut engine = crate::support::unpaced_engine();
        engine
            .add_static("counter", counter::Counter::default())
            .unwrap();
        engine.run_frames(2);
    });
    let from_loaded = fmt_lines(|| {
        let mut engine = crate::support::unpaced_engine();
        engine.load_module(counter("v1")).unwrap();
        engine.run_frames(2);
    });
    let (static_ticks, loaded_ticks) = (tick_lines(&from_static), tick_lines(&from_loaded));
    assert_eq!(static_ticks.len(), 2, "{from_static:#?}");
    assert_eq!(
        static_ticks, loaded_ticks,
        "the same event, formatted the same, from a static and a loaded module"
    );
    // The module's span `frame` around the event, then its target, fields, and the
    // module's name last.
    let first = static_ticks[0];
    let span_at = first
        .find("frame{n=")
        .unwrap_or_else(|| panic!("no span in {first:?}"));
    let target_at = first.find("counter: tick").unwrap();
    assert!(span_at < target_at, "{first}");
    assert!(
        first.ends_with("count=1 variant=\"v1\" ready=true module=counter"),
        "{first}"
    );
}

#[test]
fn a_loaded_modules_span_is_entered_recorded_and_closed_in_the_host() {
    use tracing_subscriber::registry::LookupSpan;

    /// Spans the host's subscriber opened (name and fields) and closed (name), and the
    /// span of each tick.
    #[derive(Clone, Default)]
    struct Seen {
        opened: Vec<String>,
        closed: Vec<String>,
        ticks_in: Vec<Option<String>>,
    }
    #[derive(Clone, Default)]
    struct Spans(Arc<Mutex<Seen>>);
    impl<S> Layer<S> for Spans
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            _id: &tracing::span::Id,
            _ctx: Context<'_, S>,
        ) {
            let mut fields = BTreeMap::new();
            attrs.record(&mut Fields(&mut fields));
            let mut log = self.0.lock().unwrap();
            log.opened
                .push(format!("{} {fields:?}", attrs.metadata().name()));
        }
        fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
            let name = ctx
                .span(&id)
                .map(|s| s.name().to_owned())
                .unwrap_or_default();
            self.0.lock().unwrap().closed.push(name);
        }
        fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
            let mut fields = BTreeMap::new();
            event.record(&mut Fields(&mut fields));
            if fields.get("message").is_some_and(|m| m == "tick") {
                let span = ctx.event_span(event).map(|s| s.name().to_owned());
                self.0.lock().unwrap().ticks_in.push(span);
            }
        }
    }

    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    tracing::subscriber::with_default(subscriber, || {
        let mut module = LoadedModule::load(counter("v1")).unwrap();
        for n in 0..3 {
            module.process(&frame(n)).unwrap();
        }
    });
    let Seen {
        opened,
        closed,
        ticks_in: events,
    } = spans.0.lock().unwrap().clone();
    assert_eq!(
        opened,
        [
            "frame {\"n\": \"u64:0\"}",
            "frame {\"n\": \"u64:1\"}",
            "frame {\"n\": \"u64:2\"}"
        ],
        "each frame's span, with its field"
    );
    assert_eq!(
        closed, ["frame"; 3],
        "and closed when the module dropped it"
    );
    assert_eq!(
        events,
        [
            Some("frame".to_owned()),
            Some("frame".into()),
            Some("frame".into())
        ],
        "every tick inside its span"
    );
}
