//! A static module's `tracing` events, given the `module` field a loaded module's carry, so
//! that a module logs the same lines whether it is loaded or linked in.
//!
//! A loaded module's events reach the host through the C ABI and are re-emitted from a
//! host-side twin of their callsite, with the module's name added as a last field
//! ([`crate::ffi::host_log`]). A static module's events are the host's own, so while the
//! engine calls a static module, the calling thread's dispatcher is a [`Tagger`] that does
//! the same to them: it re-emits each event from the same twin (the same log statement gets
//! the same twin either way), with the same field values, into the dispatcher that was in
//! force, and hands spans to it unchanged. While nothing could record an event (no
//! subscriber, no console), calls are made as they are, for nothing.
//!
//! One `Tagger` serves every static module of the process; which module is being called is
//! the thread's [`Scope`].

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, OnceLock, RwLock};

use tracing_core::callsite::Identifier;
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Current, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};

use crate::ffi::host_log::{HostCallsite, HostValue, print, twin_of, with_value_set};

/// Which static module the thread is calling, and the dispatcher its events go to.
struct Scope {
    /// The module being called; `None` in a [`Batch`] between two calls, when events are
    /// the host's own and pass untouched.
    module: Option<&'static str>,
    inner: Dispatch,
    /// Whether grove's console prints module events (nothing else would show them).
    console: bool,
    /// Set up by a [`Batch`], which keeps it (and the tagger in force) across calls.
    batch: bool,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// The name a static module's events carry, kept for the life of the process (one copy
/// per distinct name): entering a call then copies a reference, not a counted one.
pub(crate) fn log_name(module: &str) -> &'static str {
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(name) = names.get(module) {
        return name;
    }
    let name: &'static str = Box::leak(module.to_owned().into_boxed_str());
    names.insert(name);
    name
}

/// Runs `f`, a call into static module `module` (a [`log_name`]), with its events tagged
/// with its name.
pub(crate) fn in_module<R>(module: &'static str, f: impl FnOnce() -> R) -> R {
    // In a batch, the tagger is in force already: only the module's name changes.
    let batched = SCOPE.with(|s| match s.borrow_mut().as_mut() {
        Some(scope) if scope.batch => {
            scope.module = Some(module);
            true
        }
        _ => false,
    });
    if batched {
        /// Back to the host's own events after the call, also when it panics.
        struct Between;
        impl Drop for Between {
            fn drop(&mut self) {
                let _ = SCOPE.try_with(|s| {
                    if let Some(scope) = s.borrow_mut().as_mut() {
                        scope.module = None;
                    }
                });
            }
        }
        let _between = Between;
        return f();
    }
    let Some((inner, console)) = dispatcher_to_tag() else {
        return f();
    };
    let scope = Scope {
        module: Some(module),
        inner,
        console,
        batch: false,
    };
    let outer = SCOPE.with(|s| s.replace(Some(scope)));
    /// Puts back the thread's scope, also when `f` panics.
    struct Restore(Option<Scope>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            let _ = SCOPE.try_with(|s| *s.borrow_mut() = outer);
        }
    }
    let _restore = Restore(outer);
    tracing_core::dispatcher::with_default(tagger(), f)
}

/// The dispatcher in force, which the tagger is to pass tagged events to, and whether
/// grove's console prints module events; `None` when nothing records anything, nor
/// prints: nothing to tag.
fn dispatcher_to_tag() -> Option<(Dispatch, bool)> {
    let console = crate::console::module_logs_shown();
    (console || LevelFilter::current() != LevelFilter::OFF).then(|| {
        (
            tracing_core::dispatcher::get_default(Dispatch::clone),
            console,
        )
    })
}

/// Calls into static modules on one thread, one after another: while it is alive, the
/// tagger is in force on the thread, and each call ([`in_module`]) only says which module
/// is being called. Putting the tagger in force costs more than most modules' `process`
/// (thread-local dispatcher state, reference counts): a frame of many static modules puts
/// it in force once per thread, not once per module.
pub(crate) struct Batch {
    guard: Option<tracing_core::dispatcher::DefaultGuard>,
    /// The thread's scope before the batch.
    outer: Option<Option<Scope>>,
}

/// Starts a [`Batch`] on this thread (nothing, when nothing would record an event).
pub(crate) fn batch() -> Batch {
    let Some((inner, console)) = dispatcher_to_tag() else {
        return Batch {
            guard: None,
            outer: None,
        };
    };
    let scope = Scope {
        module: None,
        inner,
        console,
        batch: true,
    };
    let outer = SCOPE.with(|s| s.replace(Some(scope)));
    Batch {
        guard: Some(tracing_core::dispatcher::set_default(tagger())),
        outer: Some(outer),
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        drop(self.guard.take());
        if let Some(outer) = self.outer.take() {
            let _ = SCOPE.try_with(|s| *s.borrow_mut() = outer);
        }
    }
}

/// Calls `f` with the dispatcher in force on this thread as the host set it: the one the
/// tagger passes events to while the tagger is in force (in a call into a static module or
/// a [`Batch`]), else the thread's default. For what must not see the tagger: whether the
/// host set a subscriber at all, and the subscriber a loaded module's span belongs to
/// (which outlives the batch it was made in).
pub(crate) fn in_force<R>(mut f: impl FnMut(&Dispatch) -> R) -> R {
    let behind = tracing_core::dispatcher::get_default(|d| {
        if d.is::<Tagger>() {
            with_scope(|scope| scope.inner.clone())
        } else {
            None
        }
    });
    match behind {
        Some(inner) => f(&inner),
        None => tracing_core::dispatcher::get_default(f),
    }
}

/// The process's one `Tagger`.
fn tagger() -> &'static Dispatch {
    static TAGGER: OnceLock<Dispatch> = OnceLock::new();
    TAGGER.get_or_init(|| {
        Dispatch::new(Tagger {
            twins: RwLock::new(HashMap::new()),
        })
    })
}

/// Calls `f` with the thread's scope; `None` outside one (a thread the tagger was handed
/// to by hand).
fn with_scope<R>(f: impl FnOnce(&Scope) -> R) -> Option<R> {
    SCOPE
        .try_with(|s| s.borrow().as_ref().map(f))
        .ok()
        .flatten()
}

/// The dispatcher of static module calls.
struct Tagger {
    /// Each event callsite's twin, with the `module` field.
    twins: RwLock<HashMap<Identifier, &'static HostCallsite>>,
}

impl Tagger {
    fn twin(&self, meta: &'static Metadata<'static>) -> &'static HostCallsite {
        let id = meta.callsite();
        if let Some(twin) = self
            .twins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return twin;
        }
        let twin = twin_of(meta);
        self.twins
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, twin);
        twin
    }
}

/// The dispatcher an event or span goes to: the scope's, or none.
fn inner() -> Dispatch {
    with_scope(|s| s.inner.clone()).unwrap_or_else(Dispatch::none)
}

impl Subscriber for Tagger {
    /// Asked every time: whether an event is recorded depends on the dispatcher in force
    /// when the module is called.
    fn register_callsite(&self, _meta: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    /// Adds nothing to the most verbose level the process's dispatchers record: the
    /// dispatcher in force gives its own.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        // Except what grove's console prints, while nothing else would.
        Some(if crate::console::module_logs_enabled() {
            LevelFilter::from_level(crate::console::MODULE_LEVEL)
        } else {
            LevelFilter::OFF
        })
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        with_scope(|scope| {
            if meta.is_span() || scope.module.is_none() {
                return scope.inner.enabled(meta);
            }
            // An event's metadata from `tracing`'s macros is its callsite's own; other
            // metadata has no callsite to twin and is asked as it is.
            let Some(meta) = static_meta(meta) else {
                return scope.inner.enabled(meta);
            };
            let twin = self.twin(meta);
            twin_enabled(&scope.inner, twin)
                || (scope.console && *meta.level() <= crate::console::MODULE_LEVEL)
        })
        .unwrap_or(false)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        inner().new_span(span)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        inner().record(span, values);
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        inner().record_follows_from(span, follows);
    }

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let module = with_scope(|scope| scope.module).flatten();
        let (Some(meta), Some(module)) = (static_meta(meta), module) else {
            // The host's own (between calls in a batch), or no callsite to twin.
            inner().event(event);
            return;
        };
        let twin = self.twin(meta);
        let mut fields = Fields::default();
        event.record(&mut fields);
        let values = fields.values();
        let parent = if event.is_contextual() {
            None
        } else {
            Some(event.parent().cloned())
        };
        with_scope(|scope| {
            // The console prints only while nothing else would show the event.
            if scope.console {
                print(twin, module, &values);
                return;
            }
            // `enabled` asked the dispatcher in force about the twin: it records it.
            with_value_set(twin, Some(module), &values, |meta, value_set| {
                let event = match parent {
                    None => Event::new(meta, value_set),
                    Some(parent) => Event::new_child_of(parent, meta, value_set),
                };
                scope.inner.event(&event);
            });
        });
    }

    fn enter(&self, span: &Id) {
        inner().enter(span);
    }

    fn exit(&self, span: &Id) {
        inner().exit(span);
    }

    fn clone_span(&self, span: &Id) -> Id {
        inner().clone_span(span)
    }

    fn try_close(&self, span: Id) -> bool {
        inner().try_close(span)
    }

    fn current_span(&self) -> Current {
        inner().current_span()
    }
}

/// Whether `inner` records events of `twin` now.
fn twin_enabled(inner: &Dispatch, twin: &'static HostCallsite) -> bool {
    inner.enabled(tracing_core::callsite::Callsite::metadata(twin))
}

/// `meta` as the `'static` metadata of a registered callsite, which every `tracing` macro
/// gives; `None` for metadata built at run time.
fn static_meta<'a>(meta: &'a Metadata<'a>) -> Option<&'static Metadata<'static>> {
    let callsite: &'static dyn tracing_core::Callsite = meta.callsite().0;
    let registered = callsite.metadata();
    std::ptr::eq(registered, meta).then_some(registered)
}

/// An event's field values, recorded as a loaded module records them
/// (`grove::abi::forward`): numbers and booleans as they are, strings as strings, anything
/// else as its `Debug` text.
#[derive(Default)]
struct Fields {
    values: Vec<(&'static str, Value)>,
}

enum Value {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Str(String),
    Debug(String),
}

impl Fields {
    fn values(&self) -> Vec<(&str, HostValue<'_>)> {
        self.values
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Value::I64(v) => HostValue::I64(*v),
                    Value::U64(v) => HostValue::U64(*v),
                    Value::F64(v) => HostValue::F64(*v),
                    Value::Bool(v) => HostValue::Bool(*v),
                    Value::Str(v) => HostValue::Str(v),
                    Value::Debug(v) => HostValue::Debug(v),
                };
                (*name, value)
            })
            .collect()
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.values
            .push((field.name(), Value::Debug(format!("{value:?}"))));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.values
            .push((field.name(), Value::Str(value.to_owned())));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.values.push((field.name(), Value::I64(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.values.push((field.name(), Value::U64(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.values.push((field.name(), Value::F64(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.values.push((field.name(), Value::Bool(value)));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_core::span::{Attributes, Id, Record};
    use tracing_core::{Event, Metadata, Subscriber};

    use super::*;

    /// An event's message and `module` field.
    type Line = (String, Option<String>);

    /// Records each event's message and `module` field.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Line>>>);

    struct Seen {
        message: String,
        module: Option<String>,
    }

    impl Visit for Seen {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            match field.name() {
                "message" => self.message = format!("{value:?}"),
                "module" => self.module = Some(format!("{value:?}")),
                _ => {}
            }
        }

        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "message" => self.message = value.to_owned(),
                "module" => self.module = Some(value.to_owned()),
                _ => {}
            }
        }
    }

    impl Subscriber for Recorder {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut seen = Seen {
                message: String::new(),
                module: None,
            };
            event.record(&mut seen);
            self.0.lock().unwrap().push((seen.message, seen.module));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn a_batch_tags_the_events_of_module_calls_and_only_those() {
        let recorder = Recorder::default();
        let host = Dispatch::new(recorder.clone());
        tracing_core::dispatcher::with_default(&host, || {
            let batch = batch();
            tracing::info!("host before");
            in_module("alpha", || tracing::info!("in alpha"));
            tracing::info!("host between");
            let panicked = std::panic::catch_unwind(|| {
                in_module("beta", || {
                    tracing::info!("in beta");
                    panic!("beta fails");
                })
            });
            assert!(panicked.is_err());
            tracing::info!("host after a panic");
            // What looks for the host's dispatcher sees it, not the tagger in front of it.
            assert!(!crate::console::tracing_is_silent());
            assert!(in_force(|d| d.is::<Recorder>()));
            drop(batch);
            assert!(tracing_core::dispatcher::get_default(|d| d.is::<Recorder>()));
            tracing::info!("host after the batch");
        });
        let seen = recorder.0.lock().unwrap().clone();
        let module = |m: &str| Some(m.to_owned());
        assert_eq!(
            seen,
            [
                ("host before".to_owned(), None),
                ("in alpha".to_owned(), module("alpha")),
                ("host between".to_owned(), None),
                ("in beta".to_owned(), module("beta")),
                ("host after a panic".to_owned(), None),
                ("host after the batch".to_owned(), None),
            ]
        );
    }
}
