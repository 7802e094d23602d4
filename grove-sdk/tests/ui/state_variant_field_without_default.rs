#[derive(grove::__private::serde::Serialize, grove::__private::serde::Deserialize)]
#[serde(crate = "grove::__private::serde")]
pub struct Target(u32);

#[grove::state]
pub enum Order {
    Idle,
    Attack { target: Target, times: u8 },
}

fn main() {}
