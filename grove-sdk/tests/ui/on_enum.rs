use grove::prelude::*;

#[grove::module]
#[derive(Default)]
pub enum Mode {
    #[default]
    Idle,
    Running,
}

impl Module for Mode {
    fn process(&mut self, _ctx: &mut Context) {}
}

fn main() {}
