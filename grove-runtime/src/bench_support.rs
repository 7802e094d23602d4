//! Not public API: what the benchmarks need to measure the runtime's parts in isolation,
//! and the compatibility tests to play a host of another SDK version.

pub use crate::ffi::host_log::set_test_api_size;
pub use crate::ffi::maps::mapped_files_in;

use std::path::Path;
use std::sync::Arc;

use grove::abi::FrameInfo;

use crate::error::Result;
use crate::ffi::calls::ModuleCalls;
use crate::ffi::instance::Instance;
use crate::ffi::library::Library;
use crate::ffi::staging::Staging;

/// `n` instances of one module library, called through the C ABI exactly as the engine
/// calls a loaded module (vtable call and panic guard), without the engine around them.
#[derive(Debug)]
pub struct Instances {
    instances: Vec<Instance>,
}

impl Instances {
    /// Loads the library at `path` once and creates `n` instances of its module.
    pub fn load(path: &Path, n: usize) -> Result<Self> {
        let library = Arc::new(Library::load(
            path,
            &Staging::shared()?,
            &crate::ffi::library::admit_any,
        )?);
        let calls = ModuleCalls::new(library.name());
        let instances = (0..n)
            .map(|_| Instance::create_shared(Arc::clone(&library), Arc::clone(&calls)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { instances })
    }

    /// Runs `process` on every instance.
    pub fn process_all(&mut self, frame: &FrameInfo) -> Result<()> {
        self.instances.iter_mut().try_for_each(|i| i.process(frame))
    }
}

/// Takes a snapshot of every loaded module of `engine` on the calling thread, as a frame
/// does when one is due, and returns how long that took; then waits (untimed) until the
/// writer thread has them on disk.
pub fn snapshot_frame_cost(engine: &mut crate::Engine) -> std::time::Duration {
    let started = std::time::Instant::now();
    engine.snapshot_all();
    let took = started.elapsed();
    engine.snapshot_now_flush();
    took
}
