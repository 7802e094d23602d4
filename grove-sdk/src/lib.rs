//! Write Rust modules that a running host reloads while keeping their state.
//!
//! A module is an ordinary struct: its fields are the state that survives a reload, its
//! [`Module`] impl the code a reload replaces. Mark it `#[grove::module]`, build the crate
//! with `crate-type = ["cdylib", "rlib"]`, and a `grove_runtime::Engine` loads it, runs it
//! every frame, and swaps a rebuilt library in between two frames.
//!
//! ```
//! use grove::prelude::*;
//!
//! #[grove::module]            // optional: name = "counter", crate = "::grove"
//! #[derive(Default)]
//! pub struct Counter {
//!     count: u64,
//! }
//!
//! impl Module for Counter {
//!     fn process(&mut self, ctx: &mut Context) {
//!         self.count += 1;
//!         grove::tracing::info!(count = self.count, frame = ctx.frame(), "tick");
//!     }
//! }
//! # let mut counter = Counter::default();
//! # counter.process(&mut Context::from_frame(Default::default()));
//! # assert_eq!(counter.count, 1);
//! ```
//!
//! `#[grove::module]` derives serde's `Serialize` and `Deserialize` for the struct (you do
//! not add serde) with `#[serde(default)]`, so a field added in a new version starts at its
//! default. Types nested in the state are marked [`#[grove::state]`](macro@state), which
//! does the same for them. A field you do not want carried across a reload is marked
//! `#[serde(skip)]`.
//! The attribute also emits the library's exports: a header the loader checks before
//! running any code, and `create_module`. Their names are unique to the type, so several
//! module crates can be linked statically into one release binary.
//!
//! Logging: use `grove::tracing` (or your own `tracing` dependency). Inside a loaded
//! library, events are forwarded to the host's subscriber with their level, target and
//! fields; nothing needs setting up.
//!
//! # What survives a reload
//! The struct's fields, through serde: in a fast positional format when the two versions'
//! state types have the same shape (nested types included), else by field name, so that
//! added fields take their default, removed fields are dropped and reordered fields match.
//! A state the new version cannot read refuses the reload: the old version keeps running.
//!
//! # Known problems
//! - Only what serde saves survives: raw pointers, handles to threads or OS resources, and
//!   anything `#[serde(skip)]` start again from `Default` in the new version.
//! - A library whose threads still run when it is replaced (a dependency's pool, a thread
//!   not joined) is detached from the host and kept in memory for the life of the process:
//!   join your threads in a field's `Drop` to get that memory back.
//! - A `thread_local!` with a destructor, touched on a host thread, keeps the old library
//!   mapped until that thread exits (the loader reports it by name).
//! - A loaded module's `tracing` spans are the host's: they nest and hold its events in
//!   the host's subscriber, but `Span::current()` inside the module is unknown. Under a
//!   host built before span forwarding, spans are not forwarded (events are).
//! - A library must be built with `panic = "unwind"` (the default): a `panic = "abort"`
//!   build is refused at load, since its first panic would end the host.
//! - Types whose `Deserialize` rejects sample values, or that need a self-describing format
//!   (untagged or internally tagged enums, `#[serde(flatten)]`), cannot be traced for a
//!   schema fingerprint; they reload through the slower self-describing path.
//! - Untagged enums are ambiguous in serde itself: a value is read back as the first
//!   variant whose shape fits, which need not be the one saved (`#[serde(untagged)] enum
//!   Count { Wide(u64), Narrow(u8) }` saved as `Narrow(3)` comes back as `Wide(3)`), and a
//!   `Some(None)` inside one (or inside a `#[serde(flatten)]` field) cannot be read back.
//!   Give such enums a tag, or keep them out of the state.
//! - A positional reload falls back to the self-describing path, rather than misread, when
//!   a type's `Serialize` and `Deserialize` disagree (a `#[serde(skip)]` variant before
//!   others, a `skip_deserializing` field, a `skip_serializing_if` that skips, a
//!   `serialize_with` of another shape): slower, never wrong.

pub mod abi;
pub mod bus;
mod by_name;
pub mod config;
mod context;
mod diff;
mod dynamic;
mod health;
mod migrate;
mod module;
mod positional;
#[cfg(debug_assertions)]
mod prebuilt;
mod report;
mod schema;
pub mod state;

pub use bus::{Backpressure, BusError, DecodeError, Message};
pub use config::{ConfigError, Configure};
pub use context::Context;
pub use dynamic::Dynamic;
/// Marks a struct as a grove module: the state a reload keeps is its fields, the code a
/// reload replaces is its [`Module`] impl.
///
/// ```
/// use grove::prelude::*;
///
/// #[derive(Default, serde::Serialize, serde::Deserialize)]
/// pub struct Tuning {
///     speed: f32,
/// }
///
/// #[grove::module(name = "ship", config = Tuning, version = 2)]
/// #[derive(Default)]
/// pub struct Ship {
///     x: f32,
///     #[serde(skip)] // not carried across a reload: starts at its default
///     scratch: Vec<f32>,
/// }
///
/// impl Module for Ship {
///     fn process(&mut self, ctx: &mut Context) {
///         self.x += ctx.delta_secs();
///     }
/// }
///
/// impl Configure for Ship {
///     type Config = Tuning;
///     fn configure(&mut self, config: Tuning) -> Result<(), ConfigError> {
///         if config.speed < 0.0 {
///             return Err(ConfigError::field("speed", "must be 0 or more"));
///         }
///         Ok(())
///     }
/// }
/// ```
///
/// **Options**, each optional, in any order:
/// - `name = "ship"`: the name the host knows the module by (events, logs, the state
///   directory's file, `Engine::module_state`). Default: the struct's name in snake case
///   (`PlayerController` is `player_controller`). ASCII letters, digits, `_` and `-`; two
///   modules of one engine cannot share a name.
/// - `config = Type`: the module takes a config of that type (a serde type with a
///   `Default`) through its [`Configure`] impl, before `init` and whenever the config in
///   force changes (a TOML file the host watches, or a value the host sets). Without it, a
///   config given to the module is refused, saying the module has no config type.
/// - `version = N` (an integer, 1 or more; default 1): the state's version. When a reload
///   or a snapshot brings a state of another version, [`Module::migrate`] is called with
///   it; without a `migrate`, it is read by field name like any other change.
/// - `crate = "::path::to::grove"`: where grove-sdk is, for a crate that re-exports it
///   under another path. Default `::grove`.
///
/// **What it generates**: serde's `Serialize` and `Deserialize` for the struct, through
/// grove (the crate adds no serde dependency), with `#[serde(default)]`, so that a field
/// added in a new version takes its default; a check per field that its type can be saved,
/// with an error at the field that suggests [`#[grove::state]`](macro@state) for your own
/// nested types; and the library's exports, a header the loader checks from the file
/// before any of the library's code runs and `create_module`, under names unique to the
/// type, so several module crates link statically into one binary.
///
/// **Requirements**, each a compile error at the struct that says what is missing: the
/// struct implements [`Module`] and `Default` (the state a first load starts from, and what
/// a missing field falls back to), it has no generic parameters, and it is not an enum or a
/// union. The crate is built with `crate-type = ["cdylib", "rlib"]` to be loaded, and with
/// `panic = "unwind"` (cargo's default): a `panic = "abort"` library is refused at load.
pub use grove_macros::module;
/// Marks a struct or an enum nested in a module's state: it derives serde's `Serialize`
/// and `Deserialize` through grove (the module crate adds no serde dependency), with
/// defaults, so that a field the type gains in a new version takes its default instead of
/// refusing the reload with "missing field".
///
/// ```
/// use grove::prelude::*;
///
/// #[grove::state]
/// #[derive(Default)]
/// pub struct Player {
///     pos: (f32, f32),
///     hp: i32,
///     // added in a later version: a state saved before it reloads with `lives: 0`
///     lives: u8,
/// }
///
/// #[grove::state]
/// pub enum Phase {
///     Lobby,
///     // a field a struct variant gains takes its type's `Default`
///     Playing { level: u8, since: u64 },
///     Over(Option<String>),
/// }
///
/// #[grove::module]
/// #[derive(Default)]
/// pub struct Game {
///     player: Player,
///     phase: Option<Phase>,
/// }
///
/// impl Module for Game {
///     fn process(&mut self, _ctx: &mut Context) {}
/// }
/// ```
///
/// - **A struct** takes `#[serde(default)]`: a field missing from the saved state takes
///   its value from the struct's `Default` (so a hand-written `impl Default` decides what
///   a new field starts at). The struct must implement `Default`; a missing `Default` is a
///   compile error that says so. A struct that cannot have one is marked
///   `#[grove::state(no_default)]`: a state saved without one of its fields then refuses
///   the reload, naming the field, and the old version keeps running.
/// - **An enum**: each named field of a struct variant takes its type's `Default` when it
///   is missing (serde has no container default for enums); `no_default` turns this off.
///   A new *variant* needs nothing: the old state never holds it.
/// - Field types are checked as a module's are: a field whose type serde cannot save is
///   one compile error, at the field, saying what to do.
/// - serde's own attributes keep working (`#[serde(skip)]`, `rename`, `alias`, a field's
///   own `default = "..."`). `#[serde(default)]` and `#[serde(crate)]` on the type are set
///   by the attribute, and `#[derive(Serialize, Deserialize)]` too: giving them again is
///   an error.
/// - Options: `no_default`, `crate = "..."` (the path to grove-sdk, for a renamed
///   dependency).
/// - Generic types work; their serde impls take serde's usual bounds (plus `Default` for a
///   struct), and their fields are checked where the type is used with concrete types.
pub use grove_macros::state;
pub use health::{Health, HealthStatus};
pub use migrate::MigrateError;
pub use module::Module;
pub use tracing;

/// What a module author needs in scope.
pub mod prelude {
    pub use crate::{ConfigError, Configure, Context, Dynamic, Health, MigrateError, Module};
}

/// Used by the code `#[grove::module]` generates. Not public API.
///
/// Each requirement of a module is checked once, at the author's tokens, by the items
/// here, whose messages say what to do: [`assert_module`](__private::assert_module) for
/// `Module` and `Default` (at the type's name), [`StateField`](__private::StateField) for
/// serde (at each field's type). Everything else the attribute emits (the bounds of the
/// serde impls, the exported `create_module`) states the same requirements as
/// `for<'__grove>` where-clauses, which rustc only checks where they are used, never on
/// their own: one mistake, one error.
#[doc(hidden)]
pub mod __private {
    use core::marker::PhantomData;

    pub use crate::abi::export::{
        Exportable, ModuleConfig, ModuleVersion, configure, create, header, vtable,
    };
    pub use serde;

    /// Named in generated code so that a missing `Default` reports what to do.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is marked `#[grove::module]` but does not implement `Default`",
        label = "`Default` is not implemented for `{Self}`",
        note = "a module starts from its default state: add `#[derive(Default)]` or `impl Default for {Self}`"
    )]
    pub trait ModuleDefault: Default {}
    impl<T: Default> ModuleDefault for T {}

    /// The default state, for the generated `#[serde(default = ...)]`.
    pub fn default_state<T: ModuleDefault>() -> T {
        T::default()
    }

    /// Named in generated code (by `#[grove::state]`) so that a missing `Default`
    /// reports what to do.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is marked `#[grove::state]` but does not implement `Default`",
        label = "`Default` is not implemented for `{Self}`",
        note = "a field added in a new version takes its value from the type's `Default`: add `#[derive(Default)]` or `impl Default for {Self}`",
        note = "or write `#[grove::state(no_default)]`: a saved state missing one of its fields then refuses the reload"
    )]
    pub trait StateDefault: Default {}
    impl<T: Default> StateDefault for T {}

    /// The container default of a `#[grove::state]` struct.
    pub fn state_default<T: StateDefault>() -> T {
        T::default()
    }

    /// Named in generated code (by `#[grove::state]` on an enum) so that a field type
    /// without `Default` reports what to do.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` does not implement `Default`, which a field of a `#[grove::state]` enum's struct variant takes when a saved state lacks it",
        label = "`Default` is not implemented for `{Self}`",
        note = "implement or derive `Default` for it, give the field `#[serde(default = \"...\")]`, or write `#[grove::state(no_default)]` on the enum"
    )]
    pub trait FieldDefault: Default {}
    impl<T: Default> FieldDefault for T {}

    /// The default of a field of a `#[grove::state]` enum's struct variant.
    pub fn field_default<T: FieldDefault>() -> T {
        T::default()
    }

    /// Named in generated code so that a missing `Module` impl reports what to do.
    pub const fn assert_module<T: crate::Module + ModuleDefault>() {}

    /// A field of a module's state, for the check of its type:
    /// `(&StateField::<Type>::NEW).__grove_check_field()`. Method resolution takes
    /// [`Saved`]'s method when the type implements serde's traits, else [`Unsaved`]'s
    /// (through one more `&`), whose single bound reports the field once. A bound on the two
    /// serde traits would report each one that is missing.
    #[derive(Debug)]
    pub struct StateField<T>(PhantomData<T>);

    impl<T> StateField<T> {
        pub const NEW: Self = Self(PhantomData);
    }

    /// The check of a field whose type serde saves: nothing to report.
    pub trait Saved {
        fn __grove_check_field(&self) {}
    }

    impl<T: serde::Serialize + serde::de::DeserializeOwned> Saved for StateField<T> {}

    /// The check of any other field: the error.
    pub trait Unsaved {
        type Type;

        fn __grove_check_field(&self)
        where
            Self::Type: Reloadable,
        {
        }
    }

    impl<T> Unsaved for &StateField<T> {
        type Type = T;
    }

    /// Implemented by no type: requiring it is how a field serde cannot save is reported.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be kept across a reload: it does not implement serde's `Serialize` and `Deserialize`",
        label = "the fields of a `#[grove::module]` (and of a `#[grove::state]`) are saved and restored with serde",
        note = "mark your own type `#[grove::state]` (serde through grove, and a field it gains later takes its default), or enable the `serde` feature of the crate it comes from",
        note = "or mark the field `#[serde(skip)]`: it then restarts from its default on every reload"
    )]
    pub trait Reloadable {}
}
