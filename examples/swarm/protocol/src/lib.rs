//! What the swarm example's modules and host say to each other, and the world they share.
//!
//! | topic             | from   | payload      |
//! |-------------------|--------|--------------|
//! | `input:attractor` | host   | [`Attractor`]|
//! | `world:flock`     | boids  | [`Flock`]    |
//! | `score:update`    | score  | [`Score`]    |

use serde::{Deserialize, Serialize};

/// The world's width, in world units (one terminal column each).
pub const WIDTH: f32 = 96.0;
/// The world's height, in world units (one terminal row each).
pub const HEIGHT: f32 = 28.0;

/// Where the boids are drawn to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Attractor {
    pub x: f32,
    pub y: f32,
}

/// One boid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Boid {
    pub x: f32,
    pub y: f32,
    pub vx: f32,
    pub vy: f32,
}

/// Every boid, after a frame's step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flock {
    pub boids: Vec<Boid>,
    /// Steps the simulation has run (carried across reloads).
    pub steps: u64,
}

/// The score: how many boids are inside the goal zone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Boids in the zone now.
    pub in_zone: u32,
    /// The most ever at once.
    pub best: u32,
    /// Sum of `in_zone` over every frame scored (carried across reloads).
    pub points: u64,
}

/// The goal zone: a circle.
pub const ZONE: (f32, f32, f32) = (WIDTH * 0.75, HEIGHT * 0.5, 7.0);
