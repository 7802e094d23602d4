//! The dashboard on a terminal: the alternate screen in raw mode, drawn a few times a
//! second between frames, keys read without waiting. Every way out (q, Ctrl-C, SIGTERM,
//! an error) shuts the modules down and gives the terminal back as it was.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event};

use crate::capture::StderrCapture;
use crate::error::{Error, Result};
use crate::logs::LogLines;
use crate::session::Session;

/// How often the screen is drawn: often enough to look live, rarely enough to leave the
/// frames their time (a drawing takes well under a millisecond; the summary printed at the
/// end says how long).
const DRAW_EVERY: Duration = Duration::from_millis(66);

/// Runs `session` on the terminal until it quits, `stop` is set or `frames` frames have
/// run; then shuts it down.
pub fn run(
    mut session: Session,
    logs: &LogLines,
    stop: &Arc<AtomicBool>,
    frames: Option<u64>,
) -> Result<()> {
    let start = session.engine().frame();
    let mut terminal = ratatui::try_init().map_err(Error::Terminal)?;
    let capture = StderrCapture::start(logs);
    if let Err(e) = &capture {
        logs.push(&format!(
            "stderr is not captured ({e}): it may draw over the dashboard"
        ));
    }
    let mut draws: Vec<Duration> = Vec::new();
    let outcome = (|| -> Result<()> {
        let mut last_draw: Option<Instant> = None;
        while !session.quitting()
            && !stop.load(Ordering::SeqCst)
            && frames.is_none_or(|n| session.engine().frame() - start < n)
        {
            session.tick();
            let mut redraw = false;
            while event::poll(Duration::ZERO).map_err(Error::Terminal)? {
                match event::read().map_err(Error::Terminal)? {
                    Event::Key(key) => {
                        session.press(key);
                        redraw = true;
                    }
                    Event::Resize(..) => redraw = true,
                    _ => {}
                }
            }
            if redraw || last_draw.is_none_or(|at| at.elapsed() >= DRAW_EVERY) {
                let started = Instant::now();
                terminal
                    .draw(|frame| session.render(frame))
                    .map_err(Error::Terminal)?;
                draws.push(started.elapsed());
                last_draw = Some(started);
            }
        }
        Ok(())
    })();
    if let Ok(()) = outcome {
        // One last picture while the modules shut down.
        let _ = terminal.draw(|frame| session.render(frame));
    }
    let stats = session.engine().stats();
    let shutdown = session.shutdown();
    drop(capture);
    ratatui::restore();
    outcome?;
    println!("{}", summary(&stats, &mut draws));
    shutdown.map_err(Error::from)
}

/// How the run went, for the terminal once the dashboard is gone: the frames, how steady
/// they came, and what drawing the dashboard between them cost.
fn summary(stats: &grove_runtime::Stats, draws: &mut [Duration]) -> String {
    draws.sort_unstable();
    let at = |q: f64| {
        draws
            .get(((draws.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    format!(
        "{} frames at {:.2} fps (frame interval p99 {:.2} ms); the dashboard was drawn {} \
         times between frames, {:.2} ms p50, {:.2} ms p99",
        stats.frames,
        stats.mean_fps,
        stats.intervals.p99.as_secs_f64() * 1e3,
        draws.len(),
        at(0.5),
        at(0.99)
    )
}
