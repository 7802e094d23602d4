use grove::prelude::*;

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    speed: f32,
}

#[grove::module(config = Settings)]
#[derive(Default)]
pub struct Mover {
    x: f32,
}

impl Module for Mover {
    fn process(&mut self, _ctx: &mut Context) {}
}

fn main() {}
