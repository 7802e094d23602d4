//! The hello module. While `cargo run --example hello` runs, edit this file and save:
//! change the greeting or `STEP`, and watch the status line: the generation goes up, the
//! count carries on from where it was.

use grove::prelude::*;

/// How much `count` grows each frame. Try 10.
const STEP: u64 = 1;

#[grove::module]
#[derive(Default)]
pub struct Hello {
    /// Grows every frame; survives every reload.
    pub count: u64,
    /// How many times this module has been (re)initialised.
    pub inits: u32,
}

impl Module for Hello {
    fn init(&mut self, _ctx: &mut Context) {
        self.inits += 1;
        grove::tracing::info!(count = self.count, inits = self.inits, "hello module ready");
    }

    fn process(&mut self, ctx: &mut Context) {
        self.count += STEP;
        if ctx.frame().is_multiple_of(180) {
            grove::tracing::info!(count = self.count, "Hello from grove!");
        }
    }
}
