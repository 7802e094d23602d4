//! The host side of grove: load module libraries, run them, and reload them with their
//! state.
//!
//! ```no_run
//! use grove::abi::FrameInfo;
//! use grove_runtime::LoadedModule;
//!
//! # fn main() -> Result<(), grove_runtime::Error> {
//! let mut module = LoadedModule::load("target/debug/libcounter.so")?;
//! let mut frame = FrameInfo::default();
//! module.process(&frame)?;
//! // ... the library is rebuilt ...
//! frame.frame += 1;
//! let reloaded = module.reload("target/debug/libcounter.so".as_ref(), &frame)?;
//! println!("generation {} in {:?}", reloaded.generation, reloaded.took);
//! # Ok(()) }
//! ```
//!
//! # Known problems
//! - Linux only for now: the loader reads ELF files and `/proc/self/maps`.
//! - A library pinned in memory (by a `thread_local!` destructor on a live thread) cannot
//!   be unmapped; it is reported by name and its memory is held until the pin is released.
//! - Code from the old library that is still running when it is closed (a thread the
//!   module spawned and did not join) crashes the host.

#[doc(hidden)]
pub mod bench_support;
mod builder;
mod cargo_output;
mod elf;
mod engine;
mod error;
mod events;
mod frame;
mod host_log;
mod hosted;
mod instance;
mod library;
mod loaded;
mod maps;
mod signals;
mod staging;
mod static_module;
mod stats;
mod systems;
mod watcher;

pub use builder::{BuildError, BuildEvent, BuildOptions};
pub use engine::{DEFAULT_FPS, Engine, EngineBuilder, StopHandle};
pub use error::{Call, Error, Result};
pub use events::EngineEvent;
pub use hosted::HostedModule;
pub use library::{HeaderInfo, Unmapped};
pub use loaded::{LoadedModule, Reloaded};
pub use maps::mapped_files_in;
pub use staging::Staging;
pub use static_module::StaticModule;
pub use stats::{ModuleTiming, Percentiles, Stats};
pub use systems::{ModuleSystem, Pool, Sequential, Strategy, Threaded};
pub use watcher::WatchError;

pub use grove;
