pub struct Position {
    x: f32,
}

#[grove::state]
#[derive(Default)]
pub struct Player {
    hp: i32,
    position: Option<Position>,
}

fn main() {}
