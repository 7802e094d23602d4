//! The swarm example's scoring: reads the flock, counts the boids inside the goal zone,
//! publishes the score. Its points and best survive every reload.

use grove::prelude::*;
use swarm_protocol::{Flock, Score, ZONE};

#[grove::module(name = "score")]
#[derive(Default)]
pub struct Scorer {
    pub score: Score,
}

impl Module for Scorer {
    fn init(&mut self, ctx: &mut Context) {
        ctx.subscribe("world:flock");
    }

    fn process(&mut self, ctx: &mut Context) {
        let mut latest = None;
        for message in ctx.messages() {
            if let Ok(flock) = message.decode::<Flock>() {
                latest = Some(flock);
            }
        }
        let Some(flock) = latest else { return };
        let (zx, zy, r) = ZONE;
        let in_zone = flock
            .boids
            .iter()
            .filter(|b| (b.x - zx).powi(2) + ((b.y - zy) * 2.0).powi(2) <= r * r * 4.0)
            .count() as u32;
        self.score.in_zone = in_zone;
        self.score.best = self.score.best.max(in_zone);
        self.score.points += u64::from(in_zone);
        ctx.publish("score:update", &self.score);
    }
}
