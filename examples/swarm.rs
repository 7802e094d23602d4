//! The swarm: three parties talking over grove's message bus, drawn in the terminal.
//!
//! - `boids` (examples/swarm/boids, a module): a flock that follows the attractor; tuned by
//!   examples/swarm/boids/boids.toml;
//! - `score` (examples/swarm/score, a module): counts the boids in the goal zone;
//! - this host: moves the attractor, draws the flock and the score.
//!
//! ```text
//! cargo run --example swarm                       # live: edit the modules or boids.toml
//! cargo run --example swarm -- --strategy pool    # sequential (default), threaded, pool
//! cargo run --example swarm -- --headless --frames 300   # no terminal needed: prints the last frame
//! ```
//!
//! Both modules are rebuilt and reloaded when their sources change, keeping the flock, the
//! score and the messages on their way; `boids.toml` applies when saved.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use grove_examples::swarm::{Swarm, render};
use grove_runtime::{Engine, Strategy};

/// The last log lines, shown under the world instead of scrolling it away.
#[derive(Clone, Default)]
struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl Write for LogTail {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for line in String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            if lines.len() == 5 {
                lines.pop_front();
            }
            lines.push_back(line.chars().take(120).collect());
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Options {
    headless: bool,
    frames: Option<u64>,
    strategy: Strategy,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        headless: !std::io::stdout().is_terminal(),
        frames: None,
        strategy: Strategy::Sequential,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--headless" => options.headless = true,
            "--frames" => {
                let n = args.next().ok_or("--frames takes a number")?;
                options.frames = Some(
                    n.parse()
                        .map_err(|_| format!("--frames {n}: not a number"))?,
                );
            }
            "--strategy" => {
                options.strategy = match args.next().as_deref() {
                    Some("sequential") => Strategy::Sequential,
                    Some("threaded") => Strategy::Threaded,
                    Some("pool") => Strategy::Pool,
                    other => {
                        return Err(format!(
                            "--strategy {other:?}: sequential, threaded or pool"
                        ));
                    }
                }
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (see the top of examples/swarm.rs)"
                ));
            }
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let tail = LogTail::default();
    let writer = tail.clone();
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_writer(move || writer.clone())
        .init();
    let result = run(&options, &tail);
    if !options.headless {
        print!("\x1b[?25h");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            for line in tail.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                eprintln!("{line}");
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options, tail: &LogTail) -> Result<(), grove_runtime::Error> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("swarm");
    let mut engine = Engine::builder().strategy(options.strategy).build()?;
    engine.config_file("boids", dir.join("boids/boids.toml"))?;
    if !options.headless {
        eprintln!("building the swarm's modules...");
    }
    engine.watch_crate(dir.join("boids"))?;
    engine.watch_crate(dir.join("score"))?;
    let mut swarm = Swarm::new(&mut engine)?;
    if !options.headless {
        print!("\x1b[2J\x1b[?25l");
    }
    let stop = engine.stop_handle();
    let system = engine.system_name();
    let mut last = String::new();
    engine.run_with(|engine| {
        swarm.after_frame(engine);
        let scene = &swarm.scene;
        let done = options.frames.is_some_and(|n| scene.frames >= n);
        if done {
            stop.stop();
        }
        if options.headless && !done {
            return;
        }
        if !options.headless && !scene.frames.is_multiple_of(2) {
            return;
        }
        let stats = engine.stats();
        let generation = |name: &str| engine.generation(name).unwrap_or(0);
        let mut status = vec![
            format!(
                "frame {:>6} | {:>5.1} fps | {system} | boids gen {} | score gen {} | in zone {:>3} | best {:>3} | points {}",
                scene.frames,
                stats.recent_fps,
                generation("boids"),
                generation("score"),
                scene.score.in_zone,
                scene.score.best,
                scene.score.points,
            ),
            format!(
                "{} boids, {} steps | {} messages to the host | edit examples/swarm/boids/src/lib.rs or boids.toml; Ctrl-C stops",
                scene.flock.boids.len(),
                scene.flock.steps,
                scene.messages,
            ),
        ];
        // On a terminal, each line also clears what an earlier, longer one left.
        let clear = if options.headless { "" } else { "\x1b[K" };
        status.extend(
            tail.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|l| format!("  {l}{clear}")),
        );
        last = render(scene, &status);
        if !options.headless {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\x1b[H{last}\x1b[J");
            let _ = out.flush();
        }
    })?;
    if options.headless {
        print!("{last}");
    }
    Ok(())
}
