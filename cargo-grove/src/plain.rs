//! `cargo grove run` when standard output is not a terminal (a pipe, a file, CI): the
//! engine's own lines on stderr (builds, reloads, refusals, panics, module logs) and a
//! status line a second on stdout.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use grove_runtime::Engine;

use crate::error::Result;
use crate::run::Waiting;

/// How often the status line is printed.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Runs `engine` until `stop` is set or `frames` frames have run; then shuts it down.
/// Crates that did not load at the start (`waiting`) are tried again when they change, and
/// listed on the status line until they load.
pub fn run(
    mut engine: Engine,
    mut waiting: Waiting,
    stop: &Arc<AtomicBool>,
    frames: Option<u64>,
) -> Result<()> {
    let mut last_status = Instant::now();
    let start = engine.frame();
    let mut out = std::io::stdout();
    while !stop.load(Ordering::SeqCst) && frames.is_none_or(|n| engine.frame() - start < n) {
        engine.step();
        waiting.poll(&mut engine);
        if last_status.elapsed() >= STATUS_EVERY {
            last_status = Instant::now();
            let _ = writeln!(out, "{}", status_line_waiting(&mut engine, &waiting));
        }
    }
    let _ = writeln!(out, "{}", status_line_waiting(&mut engine, &waiting));
    let stats = engine.stats();
    let _ = writeln!(
        out,
        "{} frames at {:.2} fps (frame interval p99 {:.2} ms)",
        stats.frames,
        stats.mean_fps,
        stats.intervals.p99.as_secs_f64() * 1e3
    );
    engine.shutdown()?;
    Ok(())
}

/// [`status_line`], then `| module not loaded: why` for each crate waiting.
fn status_line_waiting(engine: &mut Engine, waiting: &Waiting) -> String {
    let mut line = status_line(engine);
    for failed in waiting.crates() {
        line.push_str(&format!(
            " | {} not loaded: {}",
            failed.name,
            failed.error.lines().next().unwrap_or_default()
        ));
    }
    line
}

/// `frame N | F fps | module gen G status p50 p99 | ...`
pub fn status_line(engine: &mut Engine) -> String {
    let stats = engine.stats();
    let health = engine.health();
    let mut line = format!("frame {} | {:.2} fps", stats.frames, stats.recent_fps);
    for timing in &stats.modules {
        let status = health
            .module(&timing.name)
            .map_or_else(|| "?".to_owned(), |m| m.status().to_string());
        line.push_str(&format!(
            " | {} gen {} {}{} p50 {:.1}µs p99 {:.1}µs",
            timing.name,
            timing.generation,
            status,
            if timing.faulted { " (faulted)" } else { "" },
            timing.process.p50.as_secs_f64() * 1e6,
            timing.process.p99.as_secs_f64() * 1e6,
        ));
    }
    line
}
