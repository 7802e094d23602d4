//! [`inspect_library`]: what the loader makes of a module library, and whether a saved
//! state would load into it, without hosting it: no `init`, no frame, no config. What
//! `cargo grove check` reports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use grove::state::{FieldReport, StateFormat};

use crate::error::{Error, Result};
use crate::ffi::calls::ModuleCalls;
use crate::ffi::instance::Instance;
use crate::ffi::library::{HeaderInfo, Library, Unmapped, admit_any};
use crate::ffi::staging::Staging;
use crate::snapshot::file;

/// What a module library is, as the loader sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Inspection {
    /// Its header, read from the file.
    pub header: HeaderInfo,
    /// Its state type's schema fingerprint: two versions with the same one carry the state
    /// over field by field in order (the fast path); otherwise by field name.
    pub schema_fingerprint: u64,
    /// Its default state, encoded by field name, in bytes.
    pub default_state_bytes: usize,
    /// Loading the saved state given into a fresh instance, with what became of its
    /// fields (`None` from a module built with an older grove-sdk, which does not report);
    /// `None` when no state was given.
    pub restore: Option<Result<Option<FieldReport>>>,
    /// Whether the library left memory once inspected.
    pub unmapped: Unmapped,
}

/// Opens the module library at `path`, creates its module value (its `Default`, nothing
/// else runs), reads its schema and, when `saved` is given, loads that state into the value
/// as a restart would (its `migrate` hook included), to see whether it would carry over and
/// how. Then closes it.
///
/// The error is the one loading the library would give.
pub fn inspect_library(path: impl AsRef<Path>, saved: Option<&SavedState>) -> Result<Inspection> {
    let path = path.as_ref();
    crate::ffi::crash::install();
    let library = Library::load(path, &Staging::shared()?, &admit_any)?;
    let header = library.header().clone();
    let calls = ModuleCalls::new(library.name());
    let mut instance = Instance::create(library, calls)?;
    let schema_fingerprint = instance.schema_fingerprint();
    let default_state_bytes = instance.save_state(StateFormat::SelfDescribing)?.len();
    let restore = saved.map(|saved| {
        instance.restore_state(
            StateFormat::SelfDescribing,
            &saved.state,
            saved.state_version,
        )
    });
    let (_, unmapped) = instance.retire();
    Ok(Inspection {
        header,
        schema_fingerprint,
        default_state_bytes,
        restore,
        unmapped,
    })
}

/// A module's state as the engine last saved it in a state directory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SavedState {
    /// The snapshot file.
    pub path: PathBuf,
    /// The module's type when it was saved.
    pub type_name: String,
    /// The grove-sdk that saved it.
    pub sdk_version: String,
    /// The state type's schema fingerprint then.
    pub schema_fingerprint: u64,
    /// The generation that was running.
    pub generation: u64,
    /// The version of the module's state (`#[grove::module(version = N)]`); 0 when
    /// unknown.
    pub state_version: u32,
    /// How long ago it was saved.
    pub age: Duration,
    /// The state, encoded by field name.
    pub state: Vec<u8>,
}

/// The snapshot of module `module` in state directory `dir`, read and checked but left in
/// place (an engine sets a bad one aside; this only says what is wrong with it). `None`
/// when there is none.
pub fn read_saved_state(dir: impl AsRef<Path>, module: &str) -> Result<Option<SavedState>> {
    let path = file::path_for(dir.as_ref(), module);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Read {
                path,
                source: std::sync::Arc::new(e),
            });
        }
    };
    let (header, state) = file::decode_for(&bytes, module).map_err(|p| Error::BadSnapshot {
        module: module.to_owned(),
        path: path.clone(),
        problem: p.to_string(),
    })?;
    Ok(Some(SavedState {
        age: header.age(),
        type_name: header.type_name,
        sdk_version: header.sdk_version,
        schema_fingerprint: header.schema_fingerprint,
        generation: header.generation,
        state_version: header.state_version,
        state: state.to_vec(),
        path,
    }))
}
