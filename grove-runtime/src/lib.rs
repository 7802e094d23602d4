//! The host side of grove: load module libraries, run them every frame, and swap rebuilt
//! libraries in between two frames with their state.
//!
//! ```
//! use grove::{Context, Module};
//! use grove_runtime::{Engine, EngineEvent};
//!
//! #[grove::module]
//! #[derive(Default)]
//! pub struct Ticker {
//!     ticks: u64,
//! }
//!
//! impl Module for Ticker {
//!     fn process(&mut self, _ctx: &mut Context) {
//!         self.ticks += 1;
//!     }
//! }
//!
//! # fn main() -> Result<(), grove_runtime::Error> {
//! let mut engine = Engine::builder().target_fps(0.0).build()?; // unpaced; 60 FPS by default
//! let events = engine.subscribe();
//! // A module linked into the host. During development, load it from its library instead:
//! // `engine.load_module("target/debug/libticker.so")?` or `engine.watch_crate("ticker")?`,
//! // and every rebuild is swapped in between two frames, its state carried over.
//! engine.add_static("ticker", Ticker::default())?;
//! engine.run_frames(3);
//! assert_eq!(engine.stats().modules[0].frames, 3);
//! // Its state, read by field name (any serde type holding the fields you need).
//! let state: serde_json::Value = engine.module_state("ticker")?;
//! assert_eq!(state["ticks"], 3);
//! assert!(matches!(events.try_recv(), Ok(EngineEvent::Loaded { .. })));
//! engine.shutdown()?;
//! # Ok(()) }
//! ```
//!
//! The pieces, each usable alone: [`Engine`] (the frame loop, watching, events, stats),
//! [`LoadedModule`] (one module from a library file, and the reload transaction),
//! [`StaticModule`], the module systems ([`Sequential`], [`Threaded`], [`Pool`]) and
//! [`Staging`] (where library copies go, and which files may be loaded).
//!
//! # Known problems
//! - Linux only for now: the loader reads ELF files and `/proc/self/maps`.
//! - A library pinned in memory (by a `thread_local!` destructor on a live thread) cannot
//!   be unmapped; it is reported by name and its memory is held until the pin is released.
//! - A library whose threads still run its code when it is replaced is never unmapped: it
//!   is detached from the host and kept for the life of the process
//!   ([`Unmapped::ThreadsRunning`]).
//! - A segfault, abort or stack overflow in a module's code ends the process; grove prints
//!   which module, call and signal first (see [`EngineBuilder::crash_reports`]).

#[doc(hidden)]
pub mod bench_support;
mod builder;
mod bus;
mod config;
mod console;
mod engine;
mod error;
mod events;
mod ffi;
mod frame;
mod health;
mod hosted;
mod inspect;
mod loaded;
mod old_state;
mod signals;
mod snapshot;
mod state_policy;
mod static_log;
mod static_module;
mod stats;
mod systems;
mod watch;
mod watchdog;

pub use builder::{BuildError, BuildOptions, BuiltCrate, DevProfile, build_crate};
pub use bus::{BusStats, HOST_PUBLISHER, HostMessage, Inbox, ModuleBusStats, TopicStats};
pub use config::{ConfigLocation, ConfigOrigin};
pub use engine::{DEFAULT_FPS, DEFAULT_RELOAD_BUDGET, Engine, EngineBuilder, StopHandle};
pub use error::{Call, Error, Result};
pub use events::EngineEvent;
pub use ffi::library::{HeaderInfo, Unmapped};
pub use ffi::staging::Staging;
pub use ffi::threads::LibraryThread;
pub use health::{HealthReport, ModuleHealth};
pub use hosted::HostedModule;
pub use inspect::{Inspection, SavedState, inspect_library, read_saved_state};
pub use loaded::{LoadedModule, Reloaded};
pub use snapshot::{DEFAULT_SNAPSHOT_EVERY, PreviousRun, SnapshotProblem};
pub use state_policy::{LossyPolicy, StatePolicy};
pub use static_module::StaticModule;
pub use stats::{ModuleTiming, Percentiles, Stats};
pub use systems::{ModuleSystem, Pool, Sequential, Strategy, Threaded};
pub use watch::WatchError;
pub use watchdog::DEFAULT_CALL_LIMIT;

pub use grove;
