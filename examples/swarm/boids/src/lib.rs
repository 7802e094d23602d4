//! The swarm example's simulation: boids that follow the attractor the host publishes, and
//! publish where they are every frame. Edit `step` below (try `max_speed * 0.3`, or drop
//! the separation) while `cargo run --example swarm` runs: the flock changes behaviour
//! where it stands. Its tuning is `boids.toml`, live too.

use grove::prelude::*;
use serde::{Deserialize, Serialize};
use swarm_protocol::{Attractor, Boid, Flock, HEIGHT, WIDTH};

/// The flock's tuning (`boids.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoidsConfig {
    pub count: usize,
    pub max_speed: f32,
    pub attraction: f32,
    pub cohesion: f32,
    pub alignment: f32,
    pub separation: f32,
}

impl Default for BoidsConfig {
    fn default() -> Self {
        Self {
            count: 60,
            max_speed: 18.0,
            attraction: 0.9,
            cohesion: 0.4,
            alignment: 0.5,
            separation: 1.6,
        }
    }
}

#[grove::module(config = BoidsConfig)]
#[derive(Default)]
pub struct Boids {
    /// The flock: kept across reloads.
    pub flock: Flock,
    /// The last attractor heard of.
    pub attractor: Option<Attractor>,
    /// A small random generator's state, so runs are repeatable.
    pub seed: u64,
    #[serde(skip)]
    config: BoidsConfig,
}

impl Configure for Boids {
    type Config = BoidsConfig;

    fn configure(&mut self, config: BoidsConfig) -> Result<(), ConfigError> {
        if config.count > 2000 {
            return Err(ConfigError::field("count", "at most 2000 boids"));
        }
        if config.max_speed.is_nan() || config.max_speed <= 0.0 {
            return Err(ConfigError::field("max_speed", "must be above 0"));
        }
        self.config = config;
        Ok(())
    }
}

impl Boids {
    fn random(&mut self) -> f32 {
        // xorshift64*: repeatable, no dependency.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Adds or removes boids until there are `count`.
    fn populate(&mut self) {
        if self.seed == 0 {
            self.seed = 0x9e37_79b9_7f4a_7c15;
        }
        while self.flock.boids.len() < self.config.count {
            let boid = Boid {
                x: self.random() * WIDTH,
                y: self.random() * HEIGHT,
                vx: self.random() * 8.0 - 4.0,
                vy: self.random() * 4.0 - 2.0,
            };
            self.flock.boids.push(boid);
        }
        self.flock.boids.truncate(self.config.count);
    }

    /// One step of `dt` seconds.
    fn step(&mut self, dt: f32) {
        let c = &self.config;
        let n = self.flock.boids.len().max(1) as f32;
        let (cx, cy) = self
            .flock
            .boids
            .iter()
            .fold((0.0, 0.0), |(x, y), b| (x + b.x, y + b.y));
        let (cx, cy) = (cx / n, cy / n);
        let (ax, ay) = self
            .flock
            .boids
            .iter()
            .fold((0.0, 0.0), |(x, y), b| (x + b.vx, y + b.vy));
        let (ax, ay) = (ax / n, ay / n);
        let target = self.attractor.map(|a| (a.x, a.y));
        let before = self.flock.boids.clone();
        for boid in &mut self.flock.boids {
            let mut fx = (cx - boid.x) * c.cohesion + (ax - boid.vx) * c.alignment;
            let mut fy = (cy - boid.y) * c.cohesion + (ay - boid.vy) * c.alignment;
            if let Some((tx, ty)) = target {
                fx += (tx - boid.x) * c.attraction;
                fy += (ty - boid.y) * c.attraction;
            }
            for other in &before {
                let (dx, dy) = (boid.x - other.x, boid.y - other.y);
                let d2 = dx * dx + dy * dy;
                if d2 > 0.0 && d2 < 4.0 {
                    fx += dx / d2 * c.separation * 8.0;
                    fy += dy / d2 * c.separation * 8.0;
                }
            }
            boid.vx += fx * dt;
            boid.vy += fy * dt;
            let speed = (boid.vx * boid.vx + boid.vy * boid.vy).sqrt();
            if speed > c.max_speed {
                boid.vx *= c.max_speed / speed;
                boid.vy *= c.max_speed / speed;
            }
            boid.x = (boid.x + boid.vx * dt).clamp(0.0, WIDTH - 0.01);
            boid.y = (boid.y + boid.vy * dt).clamp(0.0, HEIGHT - 0.01);
        }
        self.flock.steps += 1;
    }
}

impl Module for Boids {
    fn init(&mut self, ctx: &mut Context) {
        ctx.subscribe("input:*");
        self.populate();
    }

    fn process(&mut self, ctx: &mut Context) {
        for message in ctx.messages() {
            if let Ok(attractor) = message.decode::<Attractor>() {
                self.attractor = Some(attractor);
            }
        }
        self.populate();
        // A fixed step: the same flock whatever the frame rate.
        self.step(1.0 / 60.0);
        ctx.publish("world:flock", &self.flock);
    }

    fn health(&self) -> Health {
        Health::healthy()
            .metric("boids", self.flock.boids.len() as f64)
            .metric("steps", self.flock.steps as f64)
    }
}
