//! Host programs showing grove; see the `[[example]]` targets. The swarm example's host
//! side lives here, so that a test can run it headless.

pub mod swarm;
