use grove::prelude::*;

#[derive(Default)]
pub struct Position {
    x: f32,
    y: f32,
}

#[grove::module]
#[derive(Default)]
pub struct Player {
    position: Position,
}

impl Module for Player {
    fn process(&mut self, _ctx: &mut Context) {
        self.position.x += self.position.y;
    }
}

fn main() {}
