use grove::prelude::*;

#[grove::module(version = "2")]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

impl Module for Counter {
    fn process(&mut self, _ctx: &mut Context) {
        self.count += 1;
    }
}

fn main() {}
