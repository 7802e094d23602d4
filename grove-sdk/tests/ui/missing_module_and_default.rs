#[grove::module]
pub struct Counter {
    count: u64,
}

fn main() {}
