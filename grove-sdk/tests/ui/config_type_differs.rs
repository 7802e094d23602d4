use grove::prelude::*;

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    speed: f32,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Other {
    speed: f32,
}

#[grove::module(config = Settings)]
#[derive(Default)]
pub struct Mover {
    x: f32,
}

impl Module for Mover {
    fn process(&mut self, _ctx: &mut Context) {}
}

impl Configure for Mover {
    type Config = Other;

    fn configure(&mut self, _config: Other) -> Result<(), ConfigError> {
        Ok(())
    }
}

fn main() {}
