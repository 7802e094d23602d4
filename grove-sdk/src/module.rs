//! The [`Module`] trait: what a module author implements.

use crate::{Context, Dynamic, Health, MigrateError};

/// A hot-reloadable unit of behaviour.
///
/// Implement it on a struct marked `#[grove::module]`: the struct's fields are the state
/// that survives a reload, the methods are the code that a reload replaces.
///
/// Lifecycle: the value is created with `Default`, then [`init`](Module::init) runs; then
/// [`process`](Module::process) once per frame. On a reload the old value's state is saved,
/// a new value is created and its state restored, and `init` runs again on the new value;
/// the old value is dropped. [`shutdown`](Module::shutdown) runs once, when the module
/// leaves the engine for good (it is removed, or the engine stops).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is marked `#[grove::module]` but does not implement `grove::Module`",
    label = "`grove::Module` is not implemented for `{Self}`",
    note = "add `impl grove::Module for {Self} {{ fn process(&mut self, ctx: &mut grove::Context) {{ /* ... */ }} }}`"
)]
pub trait Module: Send + 'static {
    /// Runs after the module is created and after every reload, before the next `process`.
    fn init(&mut self, ctx: &mut Context) {
        let _ = ctx;
    }

    /// Runs once per frame.
    fn process(&mut self, ctx: &mut Context);

    /// Runs once when the module leaves the engine for good. Not called on reload.
    fn shutdown(&mut self, ctx: &mut Context) {
        let _ = ctx;
    }

    /// How the module is doing, when the host asks (about once a second, and on
    /// `Engine::health`): a status, a message and named metrics. Keep it cheap; it runs
    /// between frames. Reporting [`Health::failed`] sends the host an event. Healthy by
    /// default.
    fn health(&self) -> Health {
        Health::healthy()
    }

    /// Builds the state from one saved by another version, when reading it by field name
    /// is not the right thing: called when the old state's version
    /// (`#[grove::module(version = N)]`, 1 by default; 0 for a library built before
    /// versions existed) differs from this one's, and when the old state does not read
    /// by field name (a field changed type, say). `old` is the old state without its type:
    /// read its fields with [`Dynamic::field`] and [`Dynamic::get`].
    ///
    /// Return [`MigrateError::new`] to refuse: the reload is refused with that message and
    /// the running version keeps its state. The default has no hook
    /// ([`MigrateError::NotProvided`]): a version change is then read by field name, as any
    /// other change.
    ///
    /// ```
    /// use grove::prelude::*;
    ///
    /// #[grove::module(version = 2)]
    /// #[derive(Default)]
    /// pub struct Ship {
    ///     speed_mps: f64, // version 1 had `speed_kmh: f64`
    /// }
    ///
    /// impl Module for Ship {
    ///     fn process(&mut self, _ctx: &mut Context) {}
    ///
    ///     fn migrate(from_version: u32, old: Dynamic) -> Result<Self, MigrateError> {
    ///         match from_version {
    ///             1 => Ok(Ship { speed_mps: old.field::<f64>("speed_kmh")? / 3.6 }),
    ///             v => Err(MigrateError::new(format!("no migration from version {v}"))),
    ///         }
    ///     }
    /// }
    /// ```
    fn migrate(from_version: u32, old: Dynamic) -> Result<Self, MigrateError>
    where
        Self: Sized,
    {
        let _ = (from_version, old);
        Err(MigrateError::NotProvided)
    }
}
