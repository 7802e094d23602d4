use grove::prelude::*;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    speed: f32,
    name: String,
}

#[grove::module(config = Settings)]
#[derive(Default)]
pub struct Mover {
    x: f32,
    #[serde(skip)]
    settings: Settings,
}

impl Module for Mover {
    fn process(&mut self, _ctx: &mut Context) {
        self.x += self.settings.speed;
    }

    fn health(&self) -> Health {
        Health::healthy().metric("x", f64::from(self.x))
    }
}

impl Configure for Mover {
    type Config = Settings;

    fn configure(&mut self, config: Settings) -> Result<(), ConfigError> {
        if config.speed < 0.0 {
            return Err(ConfigError::field("speed", "must be 0 or more"));
        }
        self.settings = config;
        Ok(())
    }
}

fn main() {}
