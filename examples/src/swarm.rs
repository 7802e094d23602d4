//! The host side of the swarm example: it moves the attractor (published on
//! `input:attractor`), listens to the flock and the score (`world:flock`, `score:update`),
//! and draws the world as text, the same on a terminal and in a test.

use grove_runtime::{Engine, Inbox};
use swarm_protocol::{Attractor, Flock, HEIGHT, Score, WIDTH, ZONE};

/// What the host knows of the world, from the messages it received.
#[derive(Debug, Default, Clone)]
pub struct Scene {
    /// The flock, as last published.
    pub flock: Flock,
    /// The score, as last published.
    pub score: Score,
    /// Where the attractor is.
    pub attractor: Option<Attractor>,
    /// Frames the host has run.
    pub frames: u64,
    /// Messages received, in all.
    pub messages: u64,
}

/// The host's end of the bus for the scene.
#[derive(Debug)]
pub struct Swarm {
    flock: Inbox,
    score: Inbox,
    /// The scene as of the last frame.
    pub scene: Scene,
}

/// Where the attractor is at `frame`: an orbit around the world that passes through the
/// goal zone once a lap (about 13 s at 60 FPS).
pub fn attractor_at(frame: u64) -> Attractor {
    let t = frame as f32 / 60.0 * 0.5;
    Attractor {
        x: WIDTH * 0.5 + (WIDTH * 0.3) * t.cos(),
        y: HEIGHT * 0.5 + (HEIGHT * 0.3) * (t * 2.0).sin(),
    }
}

impl Swarm {
    /// Subscribes the host to the flock and the score.
    pub fn new(engine: &mut Engine) -> grove_runtime::Result<Self> {
        Ok(Self {
            flock: engine.subscribe_topic("world:flock")?,
            score: engine.subscribe_topic("score:update")?,
            scene: Scene::default(),
        })
    }

    /// After a frame: reads what it published, and publishes where the attractor is for
    /// the next one.
    pub fn after_frame(&mut self, engine: &mut Engine) {
        self.scene.frames += 1;
        for message in self.flock.drain() {
            self.scene.messages += 1;
            if let Ok(flock) = message.decode::<Flock>() {
                self.scene.flock = flock;
            }
        }
        for message in self.score.drain() {
            self.scene.messages += 1;
            if let Ok(score) = message.decode::<Score>() {
                self.scene.score = score;
            }
        }
        let attractor = attractor_at(self.scene.frames);
        self.scene.attractor = Some(attractor);
        if let Err(e) = engine.publish("input:attractor", &attractor) {
            eprintln!("cannot publish the attractor: {e}");
        }
    }
}

/// The scene as text: a frame of `WIDTH` x `HEIGHT` characters, boids as arrows (`>`, `<`,
/// `^`, `v`), the attractor as `@`, the goal zone's rim as `.`, then `status` lines.
pub fn render(scene: &Scene, status: &[String]) -> String {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut grid = vec![vec![' '; w]; h];
    let (zx, zy, r) = ZONE;
    for (y, row) in grid.iter_mut().enumerate() {
        for (x, cell) in row.iter_mut().enumerate() {
            let d = ((x as f32 + 0.5 - zx).powi(2) + ((y as f32 + 0.5 - zy) * 2.0).powi(2)).sqrt();
            if (d - r * 2.0).abs() < 0.7 {
                *cell = '.';
            }
        }
    }
    for boid in &scene.flock.boids {
        let (x, y) = (boid.x as usize, boid.y as usize);
        if x < w && y < h {
            grid[y][x] = if boid.vx.abs() >= boid.vy.abs() * 2.0 {
                if boid.vx >= 0.0 { '>' } else { '<' }
            } else if boid.vy >= 0.0 {
                'v'
            } else {
                '^'
            };
        }
    }
    if let Some(a) = scene.attractor {
        let (x, y) = (a.x as usize, a.y as usize);
        if x < w && y < h {
            grid[y][x] = '@';
        }
    }
    let mut out = String::with_capacity((w + 3) * (h + 2 + status.len()));
    let border = format!("+{}+\n", "-".repeat(w));
    out.push_str(&border);
    for row in grid {
        out.push('|');
        out.extend(row);
        out.push_str("|\n");
    }
    out.push_str(&border);
    for line in status {
        out.push_str(line);
        out.push('\n');
    }
    out
}
