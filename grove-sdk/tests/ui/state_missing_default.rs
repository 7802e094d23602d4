#[grove::state]
pub struct Player {
    hp: i32,
}

fn main() {}
