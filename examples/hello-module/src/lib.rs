//! The hello module. While `cargo run --example hello` runs, edit this file and save: change
//! the greeting's format or the code, and watch the status line: the generation goes up, the
//! count carries on from where it was. Its config, `hello.toml` next to this crate's
//! `Cargo.toml`, can be edited live too: try `step = 10`.

use grove::prelude::*;
use serde::{Deserialize, Serialize};

/// The hello module's config, read from `hello.toml`. Fields the file leaves out take
/// their default.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelloConfig {
    /// How much `count` grows each frame.
    pub step: u64,
    /// What the module says every three seconds.
    pub greeting: String,
}

impl Default for HelloConfig {
    fn default() -> Self {
        Self {
            step: 1,
            greeting: "Hello from grove!".to_owned(),
        }
    }
}

#[grove::module(config = HelloConfig)]
#[derive(Default)]
pub struct Hello {
    /// Grows every frame; survives every reload.
    pub count: u64,
    /// How many times this module has been (re)initialised.
    pub inits: u32,
    /// The config in force: handed over again after every reload, so it is not saved.
    #[serde(skip)]
    config: HelloConfig,
}

impl Configure for Hello {
    type Config = HelloConfig;

    fn configure(&mut self, config: HelloConfig) -> Result<(), ConfigError> {
        if config.step == 0 {
            return Err(ConfigError::field("step", "must be at least 1"));
        }
        grove::tracing::info!(step = config.step, greeting = %config.greeting, "hello module configured");
        self.config = config;
        Ok(())
    }
}

impl Module for Hello {
    fn init(&mut self, _ctx: &mut Context) {
        self.inits += 1;
        grove::tracing::info!(count = self.count, inits = self.inits, "hello module ready");
    }

    fn process(&mut self, ctx: &mut Context) {
        self.count += self.config.step;
        if ctx.frame().is_multiple_of(180) {
            grove::tracing::info!(count = self.count, "{}", self.config.greeting);
        }
    }

    fn health(&self) -> Health {
        let report = if self.config.step > 1000 {
            Health::degraded("counting faster than anyone can read")
        } else {
            Health::healthy()
        };
        report
            .metric("count", self.count as f64)
            .metric("step", self.config.step as f64)
    }
}
