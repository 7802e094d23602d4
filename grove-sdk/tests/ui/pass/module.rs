use grove::prelude::*;

/// Not serde's: only in skipped fields.
#[derive(Default)]
pub struct Scratch {
    bytes: Vec<u8>,
}

#[grove::module(name = "player-controller")]
#[derive(Default)]
pub struct PlayerController {
    speed: f32,
    #[serde(rename = "label", skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip)]
    scratch: Scratch,
    #[cfg(any())]
    not_compiled: NoSuchType,
    next: Option<Box<Self>>,
}

impl Module for PlayerController {
    fn process(&mut self, _ctx: &mut Context) {
        self.speed += 1.0;
        self.scratch.bytes.clear();
    }
}

#[grove::module]
#[derive(Default)]
pub struct Stateless {}

impl Module for Stateless {
    fn process(&mut self, _ctx: &mut Context) {}
}

fn main() {
    let mut ctx = Context::from_frame(Default::default());
    let mut module = PlayerController::default();
    module.process(&mut ctx);
    assert_eq!(module.speed, 1.0);
    Stateless::default().process(&mut ctx);
}
