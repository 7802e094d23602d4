//! The benchmark fixture: a light module whose state holds `GROVE_BENCH_STATE_BYTES`
//! bytes (read once, in the first `init`), so reloads can be timed against state size.
//!
//! With the `logs` feature (a variant of its own, so the others' code is untouched),
//! `process` also emits `GROVE_BENCH_LOG_EVENTS` `tracing` events (read in every `init`)
//! at the level `GROVE_BENCH_LOG_LEVEL` names (`debug`, the default, or `info`), so the
//! cost of a module's event can be timed.

use grove::prelude::*;

/// Which build this is; v2 only differs in code.
pub const VERSION: u64 = if cfg!(feature = "v2") { 2 } else { 1 };

#[cfg_attr(
    not(any(feature = "sender", feature = "receiver")),
    grove::module(name = "bench")
)]
#[cfg_attr(feature = "sender", grove::module(name = "sender"))]
#[cfg_attr(feature = "receiver", grove::module(name = "receiver"))]
#[derive(Default)]
pub struct Bench {
    /// Frames run.
    pub frames: u64,
    /// The payload carried across reloads.
    pub data: Vec<u64>,
    /// `tracing` events per `process` (not state: read from the environment in `init`).
    #[cfg(feature = "logs")]
    #[serde(skip)]
    pub log_events: u64,
    /// Whether those events are `info!` rather than `debug!`.
    #[cfg(feature = "logs")]
    #[serde(skip)]
    pub log_info: bool,
    /// Messages published (sender) or read (receiver).
    pub messages: u64,
    /// What the receiver read, summed, so the decoding is not optimised away.
    pub checksum: u64,
    /// Messages a frame (sender; `GROVE_BENCH_MESSAGES`).
    #[serde(skip)]
    pub per_frame: u64,
    /// Whether every message has a topic never seen before (`GROVE_BENCH_TOPICS=unique`).
    #[serde(skip)]
    pub unique_topics: bool,
}

/// The messaging benchmark's message: 32 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub seq: u64,
    pub x: f64,
    pub y: f64,
    pub z: u64,
}

/// Emits `n` events, `debug!` or `info!`, from one callsite each. The host calls it too:
/// the same code, with the host's own `tracing`.
#[inline(never)]
pub fn emit_events(n: u64, info: bool) {
    if info {
        for i in 0..n {
            grove::tracing::info!(i, "bench event");
        }
    } else {
        for i in 0..n {
            grove::tracing::debug!(i, "bench event");
        }
    }
}

impl Bench {
    #[cfg(feature = "sender")]
    fn send(&mut self, ctx: &mut Context) {
        use std::fmt::Write;
        let mut topic = String::from("bench:sample");
        for _ in 0..self.per_frame {
            let sample = Sample {
                seq: self.messages,
                x: 1.5,
                y: -2.5,
                z: self.frames,
            };
            if self.unique_topics {
                topic.clear();
                let _ = write!(topic, "bench:{}", self.messages);
            }
            ctx.publish(&topic, &sample);
            self.messages += 1;
        }
    }

    #[cfg(feature = "receiver")]
    fn receive(&mut self, ctx: &mut Context) {
        for message in ctx.messages() {
            if let Ok(sample) = message.decode::<Sample>() {
                self.checksum = self.checksum.wrapping_add(sample.seq);
                self.messages += 1;
            }
        }
    }
}

impl Module for Bench {
    fn init(&mut self, _ctx: &mut Context) {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        self.per_frame = env("GROVE_BENCH_MESSAGES").unwrap_or(0);
        self.unique_topics = std::env::var("GROVE_BENCH_TOPICS").is_ok_and(|v| v == "unique");
        #[cfg(feature = "receiver")]
        {
            // Patterns that match nothing the sender publishes, before the one that does:
            // the cost of matching a topic against many subscriptions.
            for i in 0..env("GROVE_BENCH_PATTERNS").unwrap_or(0) {
                _ctx.subscribe(&format!("other:{i}:*"));
            }
            let capacity = (self.per_frame as usize * 2).max(grove::bus::DEFAULT_CAPACITY);
            _ctx.try_subscribe("bench:**", grove::Backpressure::DropOldest, capacity)
                .expect("a valid pattern");
        }
        if self.data.is_empty() {
            let bytes: usize = std::env::var("GROVE_BENCH_STATE_BYTES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            self.data = (0..bytes / 8)
                .map(|i| (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
        }
        #[cfg(feature = "logs")]
        {
            self.log_events = std::env::var("GROVE_BENCH_LOG_EVENTS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            self.log_info = std::env::var("GROVE_BENCH_LOG_LEVEL").is_ok_and(|v| v == "info");
        }
    }

    fn process(&mut self, ctx: &mut Context) {
        self.frames = std::hint::black_box(self.frames + VERSION);
        #[cfg(feature = "logs")]
        emit_events(self.log_events, self.log_info);
        #[cfg(feature = "sender")]
        self.send(ctx);
        #[cfg(feature = "receiver")]
        self.receive(ctx);
        let _ = ctx;
    }
}
