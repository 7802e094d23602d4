#[grove::module]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

fn main() {}
