//! The benchmark fixture: a light module whose state holds `GROVE_BENCH_STATE_BYTES`
//! bytes (read once, in the first `init`), so reloads can be timed against state size.

use grove::prelude::*;

/// Which build this is; v2 only differs in code.
pub const VERSION: u64 = if cfg!(feature = "v2") { 2 } else { 1 };

#[grove::module(name = "bench")]
#[derive(Default)]
pub struct Bench {
    /// Frames run.
    pub frames: u64,
    /// The payload carried across reloads.
    pub data: Vec<u64>,
}

impl Module for Bench {
    fn init(&mut self, _ctx: &mut Context) {
        if self.data.is_empty() {
            let bytes: usize = std::env::var("GROVE_BENCH_STATE_BYTES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            self.data = (0..bytes / 8)
                .map(|i| (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
        }
    }

    fn process(&mut self, _ctx: &mut Context) {
        self.frames = std::hint::black_box(self.frames + VERSION);
    }
}
