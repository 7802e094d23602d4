//! The live demo: builds examples/hello-module, runs it at 60 FPS, and reloads it, with its
//! state, every time you save a change to its source. Its config is hello.toml (live too),
//! and its state is kept in target/grove-state/hello between runs.
//!
//! ```text
//! cargo run --example hello
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use grove_runtime::{Engine, EngineEvent};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), grove_runtime::Error> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("hello-module");
    // The module's state is kept on disk: stop the demo and start it again, and the count
    // carries on (also after a crash or a kill, from the last snapshot, 5 s at most).
    let state_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/grove-state/hello");
    let mut engine = Engine::builder().state_dir(&state_dir).build()?;
    if let Some(previous) = engine.previous_run() {
        println!("{previous}: resuming from the last snapshot");
    }
    let events = engine.subscribe();
    // Its config, applied before the module's first `init` and again on every save.
    let config = crate_dir.join("hello.toml");
    engine.config_file("hello", &config)?;
    let name = engine.watch_crate(&crate_dir)?;
    println!(
        "\nrunning `{name}` at 60 FPS. Edit {} or {} and save to reload it live; Ctrl-C to stop.\n",
        crate_dir.join("src/lib.rs").display(),
        config.display()
    );
    let mut last_status = Instant::now();
    let mut last_reload: Option<Duration> = None;
    engine.run_with(|engine| {
        for event in events.try_iter() {
            if let EngineEvent::Reloaded(reloaded) = event {
                last_reload = Some(reloaded.took);
            }
        }
        if last_status.elapsed() < Duration::from_secs(1) {
            return;
        }
        last_status = Instant::now();
        let stats = engine.stats();
        let state = engine.module_state::<hello_module::Hello>(&name);
        let generation = engine.generation(&name).unwrap_or(0);
        let step = engine.config(&name).map_or_else(|_| "?".to_owned(), |c| c["step"].to_string());
        let health = engine.health();
        let status = health.module(&name).map_or_else(|| "?".to_owned(), |m| m.status().to_string());
        println!(
            "frame {:>6} | {:>6.2} fps | {name} generation {generation} | count {} (step {step}) | {status} | last reload {}",
            stats.frames,
            stats.recent_fps,
            state.map_or_else(|e| format!("? ({e})"), |s| s.count.to_string()),
            last_reload.map_or_else(|| "-".to_owned(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3)),
        );
    })
}
