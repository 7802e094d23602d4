//! A host with its own loop: it decides when frames happen and calls `Engine::step()`;
//! grove still watches the module and swaps new versions in between two steps.
//!
//! ```text
//! cargo run --example own_loop
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use grove_runtime::Engine;

fn main() -> Result<(), grove_runtime::Error> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("hello-module");
    // Unpaced: this loop does its own timing.
    let mut engine = Engine::builder().target_fps(0.0).build()?;
    let name = engine.watch_crate(&crate_dir)?;
    let frame_budget = Duration::from_millis(16);
    for _ in 0..300 {
        let started = Instant::now();
        engine.step();
        // ... the host's own work: input, physics, rendering ...
        if let Some(rest) = frame_budget.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    let stats = engine.stats();
    let state: hello_module::Hello = engine.module_state(&name)?;
    println!(
        "{} frames at {:.1} fps, {name} count {} (generation {}), module process p50 {:?}",
        stats.frames,
        stats.mean_fps,
        state.count,
        engine.generation(&name)?,
        stats.modules[0].mean,
    );
    engine.shutdown()
}
