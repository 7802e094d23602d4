//! A release build: the same module crate linked in as an rlib, run through the same
//! `Module` trait with no library, no C ABI and no reloading.
//!
//! ```text
//! cargo run --release --example static_release
//! ```

use grove_runtime::Engine;

fn main() -> Result<(), grove_runtime::Error> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let mut engine = Engine::builder().target_fps(0.0).build()?;
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hello-module/hello.toml");
    engine.config_file("hello", config)?;
    engine.add_static_configured("hello", hello_module::Hello::default())?;
    engine.run_frames(1_000);
    let stats = engine.stats();
    println!(
        "{} frames, hello process mean {:?}",
        stats.frames, stats.modules[0].mean
    );
    engine.shutdown()
}
