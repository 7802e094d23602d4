use grove::prelude::*;

#[grove::module]
#[derive(Default)]
pub struct Buffer<T> {
    items: Vec<T>,
    #[serde(skip)]
    scratch: Vec<T>,
}

impl<T: Send + 'static> Module for Buffer<T> {
    fn process(&mut self, _ctx: &mut Context) {
        self.items.clear();
        self.scratch.clear();
    }
}

fn main() {}
