//! [`Sequential`]: modules one after another on the engine's thread.

use grove::abi::FrameInfo;

use super::{ModuleSystem, Strategy, run_here};
use crate::error::Error;
use crate::hosted::HostedModule;

/// Modules one after another, in registration order, on the engine's thread. No
/// synchronisation and no thread hand-off: the cheapest per module, and the right choice
/// while the modules' total work fits in a frame.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sequential;

impl ModuleSystem for Sequential {
    fn name(&self) -> &'static str {
        "sequential"
    }

    fn strategy(&self) -> Option<Strategy> {
        Some(Strategy::Sequential)
    }

    fn run_frame(
        &mut self,
        modules: &mut [&mut HostedModule],
        frame: &FrameInfo,
    ) -> Vec<(usize, Error)> {
        run_here(modules, frame)
    }
}
