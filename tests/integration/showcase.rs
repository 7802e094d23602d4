//! The swarm example (examples/swarm.rs) run headless: its modules linked in, its host
//! side driving them over the bus for a few hundred frames under each module system, and
//! what it draws checked. The live example runs the same code with the modules loaded
//! from their crates and reloaded as they are edited.

use grove_examples::swarm::{Swarm, render};
use grove_runtime::{Engine, Strategy};
use swarm_protocol::{HEIGHT, WIDTH, ZONE};

fn run(strategy: Strategy, frames: u64) -> (Engine, Swarm) {
    let mut engine = Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .strategy(strategy)
        .build()
        .unwrap();
    engine
        .add_static_configured("boids", swarm_boids::Boids::default())
        .unwrap();
    engine
        .add_static("score", swarm_score::Scorer::default())
        .unwrap();
    let mut swarm = Swarm::new(&mut engine).unwrap();
    for _ in 0..frames {
        engine.step();
        swarm.after_frame(&mut engine);
    }
    (engine, swarm)
}

#[test]
fn the_swarm_flies_to_the_attractor_and_scores_under_every_system() {
    let mut drawn = Vec::new();
    for strategy in [Strategy::Sequential, Strategy::Threaded, Strategy::Pool] {
        let (mut engine, swarm) = run(strategy, 400);
        let scene = &swarm.scene;
        assert_eq!(scene.flock.boids.len(), 60, "{strategy:?}");
        // The flock published every frame; the host hears of frame N after it, so it
        // holds the flock of the last frame: 400 steps.
        assert_eq!(scene.flock.steps, 400, "{strategy:?}");
        // The attractor passes through the goal zone in the first lap: points were scored.
        assert!(scene.score.best > 10, "{strategy:?}: {:?}", scene.score);
        assert!(scene.score.points > 0);
        // The flock follows the attractor: its centre is nearer to it than the world's
        // size.
        let n = scene.flock.boids.len() as f32;
        let cx = scene.flock.boids.iter().map(|b| b.x).sum::<f32>() / n;
        let cy = scene.flock.boids.iter().map(|b| b.y).sum::<f32>() / n;
        let a = scene.attractor.unwrap();
        assert!(
            ((cx - a.x).powi(2) + (cy - a.y).powi(2)).sqrt() < WIDTH / 3.0,
            "{strategy:?}"
        );

        let frame = render(scene, &["status".to_owned()]);
        let lines: Vec<&str> = frame.lines().collect();
        assert_eq!(
            lines.len(),
            HEIGHT as usize + 3,
            "a border, the world, a border, status"
        );
        assert!(
            lines
                .iter()
                .take(HEIGHT as usize + 2)
                .all(|l| l.chars().count() == WIDTH as usize + 2)
        );
        let glyphs = frame.chars().filter(|c| "<>^v".contains(*c)).count();
        assert!(glyphs > 10 && glyphs <= 60, "{glyphs} boids drawn");
        assert_eq!(frame.matches('@').count(), 1, "the attractor");
        assert!(frame.contains('.'), "the goal zone at {ZONE:?}");
        let health = engine.health();
        let boids = health.module("boids").unwrap();
        assert_eq!(boids.messages.decode_errors, 0);
        assert_eq!(
            boids.messages.delivered, 399,
            "an attractor every frame from the second"
        );
        engine.shutdown().unwrap();
        drawn.push(frame);
    }
    // The same world whatever system ran it: the bus's order does not depend on it.
    assert_eq!(drawn[0], drawn[1]);
    assert_eq!(drawn[0], drawn[2]);
}
