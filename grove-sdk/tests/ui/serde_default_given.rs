use grove::prelude::*;

#[grove::module]
#[derive(Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Counter {
    frame_count: u64,
}

impl Module for Counter {
    fn process(&mut self, _ctx: &mut Context) {
        self.frame_count += 1;
    }
}

fn main() {}
