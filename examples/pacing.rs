//! Measures frame pacing: runs the engine at a target rate (default 60 FPS) for a while
//! (default 10 s) with one light module, and prints the achieved rate and how far each
//! frame interval was from the period.
//!
//! ```text
//! cargo run --release --example pacing -- [seconds] [fps]
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use grove::{Context, Module};
use grove_runtime::{Engine, StaticModule};

/// Records when each frame started, as the engine reports it.
#[derive(Debug)]
struct Recorder(Arc<Mutex<Vec<Duration>>>);

impl Module for Recorder {
    fn process(&mut self, ctx: &mut Context) {
        self.0.lock().unwrap().push(ctx.elapsed());
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() -> Result<(), grove_runtime::Error> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let fps: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60.0);
    let starts = Arc::new(Mutex::new(Vec::new()));
    let mut engine = Engine::builder().target_fps(fps).build()?;
    // Not serde (it holds a handle): added without a state type.
    let recorder = StaticModule::stateless("recorder", Recorder(Arc::clone(&starts)));
    engine.add_linked(recorder, None)?;
    let frames = (seconds * fps).round() as u64;
    engine.run_frames(frames);
    engine.shutdown()?;

    let starts = starts.lock().unwrap();
    let period = 1.0 / fps;
    let span = (*starts.last().unwrap() - starts[0]).as_secs_f64();
    let achieved = (starts.len() - 1) as f64 / span;
    let mut errors: Vec<f64> = starts
        .windows(2)
        .map(|w| ((w[1] - w[0]).as_secs_f64() - period).abs() * 1e3)
        .collect();
    errors.sort_by(f64::total_cmp);
    println!(
        "| target | frames | achieved FPS | mean FPS error | interval error p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {fps} FPS, {seconds} s | {} | {achieved:.4} | {:.4}% | {:.3} ms | {:.3} ms | {:.3} ms |",
        starts.len(),
        (achieved - fps).abs() / fps * 100.0,
        percentile(&errors, 0.5),
        percentile(&errors, 0.99),
        errors.last().unwrap(),
    );
    Ok(())
}
