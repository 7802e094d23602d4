use grove::prelude::*;

#[grove::module]
#[derive(Default)]
pub struct Counter(u64);

impl Module for Counter {
    fn process(&mut self, _ctx: &mut Context) {
        self.0 += 1;
    }
}

fn main() {}
