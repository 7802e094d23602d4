//! Writing a state set aside by a fresh start
//! ([`Engine::reload_fresh`](crate::Engine::reload_fresh)) to a file, so that nothing is
//! lost.
//!
//! The file holds the state as a reload carries it: grove's self-describing encoding
//! (MessagePack, fields by name). Read it with `grove::Dynamic::from_slice` or
//! `grove::state::load::<T>(&bytes, StateFormat::SelfDescribing)`, or hand it back to a
//! module with `Engine::set_module_state(name, &Dynamic::from_slice(&bytes)?)`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where a module's old state goes: the first of `dirs` where the file can be written.
pub(crate) fn write(
    module: &str,
    generation: u64,
    state: &[u8],
    dirs: &[PathBuf],
) -> Result<PathBuf> {
    let name = format!(
        "{module}.generation-{generation}.{}.state",
        crate::snapshot::file::now_ms()
    );
    let mut tried = Vec::new();
    for dir in dirs {
        let path = dir.join(&name);
        match write_new(&path, state) {
            Ok(()) => {
                tracing::warn!(module = %module, path = %path.display(), bytes = state.len(), "the old state was written to a file before a fresh start");
                return Ok(path);
            }
            Err(error) => tried.push((path, error.to_string())),
        }
    }
    Err(Error::OldStateNotSaved {
        module: module.to_owned(),
        tried,
    })
}

/// Writes `bytes` to `path`, which must not exist yet, flushed to disk.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}
