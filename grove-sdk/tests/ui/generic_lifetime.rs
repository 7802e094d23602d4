#[grove::module]
#[derive(Default)]
pub struct Greeter<'a> {
    greeting: &'a str,
}

fn main() {}
