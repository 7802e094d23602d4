use grove::prelude::*;

#[grove::module]
#[derive(Default)]
pub struct Player {
    position: Postion,
    path: Vec<Postion>,
}

impl Module for Player {
    fn process(&mut self, _ctx: &mut Context) {}
}

fn main() {}
