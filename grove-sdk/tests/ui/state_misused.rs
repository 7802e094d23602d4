#[grove::state(nodefault)]
#[derive(Default, serde::Serialize)]
#[serde(default)]
pub struct Player {
    hp: i32,
}

#[grove::state]
pub union Bits {
    a: u32,
}

fn main() {}
