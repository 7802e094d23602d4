//! The [`Module`] trait: what a module author implements.

use crate::{Context, Health};

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
}
