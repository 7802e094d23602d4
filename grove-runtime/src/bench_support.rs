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

/// A module library whose copies are written under other module names: one library
/// loaded many times under distinct names, as the many-modules test and benchmark need.
#[derive(Debug)]
pub struct Renamer {
    bytes: Vec<u8>,
    /// Where the placeholder name is in `bytes`.
    at: Vec<usize>,
    placeholder: String,
}

impl Renamer {
    /// Reads the library at `path`, built with the module name `placeholder` (found in it,
    /// as the bytes of a string constant, at least once).
    pub fn new(path: &Path, placeholder: &str) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        let needle = placeholder.as_bytes();
        let at: Vec<usize> = match needle.first() {
            Some(&first) => (0..bytes.len().saturating_sub(needle.len() - 1))
                .filter(|&i| bytes[i] == first && bytes[i..].starts_with(needle))
                .collect(),
            None => Vec::new(),
        };
        if at.is_empty() {
            return Err(std::io::Error::other(format!(
                "{} does not contain {placeholder:?}",
                path.display()
            )));
        }
        Ok(Self {
            bytes,
            at,
            placeholder: placeholder.to_owned(),
        })
    }

    /// Writes the library to `to` with every occurrence of the placeholder replaced by
    /// `name`, which must be as long (so that nothing else in the library moves).
    pub fn write(&mut self, to: &Path, name: &str) -> std::io::Result<()> {
        if name.len() != self.placeholder.len() {
            return Err(std::io::Error::other(format!(
                "{name:?} is not as long as the placeholder {:?}",
                self.placeholder
            )));
        }
        for &at in &self.at {
            self.bytes[at..at + name.len()].copy_from_slice(name.as_bytes());
        }
        std::fs::write(to, &self.bytes)
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
