use grove::prelude::*;

#[grove::state]
#[derive(Default)]
pub struct Player {
    pos: (f32, f32),
    #[serde(skip)]
    cache: Vec<u8>,
}

#[grove::state]
pub enum Phase {
    Lobby,
    Playing {
        level: u8,
        #[serde(default = "nine")]
        lives: u8,
    },
    Over(Option<String>),
}

fn nine() -> u8 {
    9
}

#[grove::state(no_default)]
pub struct Handle {
    id: u32,
}

#[grove::state]
#[derive(Default)]
pub struct Grid<T> {
    cells: Vec<T>,
}

#[grove::module]
#[derive(Default)]
pub struct Game {
    player: Player,
    phase: Option<Phase>,
    handles: Vec<Handle>,
    grid: Grid<u16>,
}

impl Module for Game {
    fn process(&mut self, _ctx: &mut Context) {
        self.player.pos.0 += 1.0;
        self.player.cache.clear();
        self.grid.cells.push(self.handles.len() as u16);
        if let Some(Phase::Playing { level, lives }) = &mut self.phase {
            *level += *lives;
        }
        let _ = self.handles.iter().map(|h| h.id).sum::<u32>();
    }
}

fn main() {}
