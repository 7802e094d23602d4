//! [`Context`]: what a module sees of the frame it runs in.

use std::time::Duration;

use crate::abi::FrameInfo;

/// The frame a module is running in: its number and timing.
///
/// Handed to [`Module::init`](crate::Module::init), [`Module::process`](crate::Module::process)
/// and [`Module::shutdown`](crate::Module::shutdown).
#[derive(Debug, Clone)]
pub struct Context {
    frame: FrameInfo,
}

impl Context {
    /// A context for the frame `frame`. Hosts build these; modules receive them.
    pub fn from_frame(frame: FrameInfo) -> Self {
        Self { frame }
    }

    /// The frame number, counting from 0.
    pub fn frame(&self) -> u64 {
        self.frame.frame
    }

    /// Time since the previous frame started.
    pub fn delta(&self) -> Duration {
        Duration::from_nanos(self.frame.delta_ns)
    }

    /// Time since the previous frame started, in seconds: the usual factor for movement.
    pub fn delta_secs(&self) -> f32 {
        self.delta().as_secs_f32()
    }

    /// Time since the engine started.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.frame.elapsed_ns)
    }

    /// The raw frame information, as it crosses the ABI.
    pub fn frame_info(&self) -> &FrameInfo {
        &self.frame
    }
}
