use grove::prelude::*;

#[grove::module]
#[derive(Default)]
pub struct Ticker;

impl Module for Ticker {
    fn process(&mut self, _ctx: &mut Context) {}
}

fn main() {}
