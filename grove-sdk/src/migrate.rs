//! Restoring a state saved by another version of a module, with its [`FieldReport`], and
//! the module's `migrate` hook for a state that the new version cannot read by field name.
//!
//! The order, for a self-describing state (the positional one is only used between two
//! versions with the same schema, and reports nothing changed):
//! 1. when the old state's version (`#[grove::module(version = N)]`) differs from this
//!    one's, the module's [`Module::migrate`] builds the new state from the old one as a
//!    [`Dynamic`] value; a module without the hook goes on to step 2;
//! 2. the state is read by field name, and compared with what was saved (the report);
//! 3. when that fails, the hook is asked (if the module has one); else the restore fails,
//!    naming the field, and the host keeps the running version.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Module;
use crate::dynamic::Dynamic;
use crate::report::FieldReport;
use crate::state::{self, StateError, StateFormat};

/// Why a module's [`Module::migrate`] hook built no state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrateError {
    /// The module has no `migrate` hook: what the trait's default returns.
    NotProvided,
    /// The hook refused the old state, saying why.
    Refused(String),
}

impl MigrateError {
    /// A refusal, saying why: the reload is refused with this message, and the running
    /// version keeps its state.
    pub fn new(why: impl fmt::Display) -> Self {
        MigrateError::Refused(why.to_string())
    }
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::NotProvided => f.write_str("the module has no migrate hook"),
            MigrateError::Refused(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for MigrateError {}

impl From<StateError> for MigrateError {
    fn from(error: StateError) -> Self {
        MigrateError::Refused(error.to_string())
    }
}

/// Reads `bytes`, saved in `format` by version `from_version` of the module (0: unknown,
/// an SDK without versions), as an `M` of version `version`, and says what became of its
/// fields. The error is a message for the host.
pub(crate) fn restore<M>(
    bytes: &[u8],
    format: StateFormat,
    from_version: u32,
    version: u32,
) -> Result<(M, FieldReport), String>
where
    M: Module + Serialize + DeserializeOwned,
{
    if format == StateFormat::Positional {
        let value = state::restore(bytes, format).map_err(|e| e.to_string())?;
        return Ok((value, FieldReport::default()));
    }
    let old = Dynamic::from_slice(bytes).map_err(|e| e.to_string())?;
    if from_version != 0 && from_version != version {
        match M::migrate(from_version, old.clone()) {
            Ok(value) => {
                let why = format!("the state was saved by version {from_version}");
                return Ok((value, FieldReport::migrated(from_version, version, why)));
            }
            // Without a hook, a version bump is read by field name, as any change.
            Err(MigrateError::NotProvided) => {}
            Err(refused) => {
                return Err(format!(
                    "the module's migrate hook refused the state of version {from_version}: \
                     {refused}"
                ));
            }
        }
    }
    match state::load::<M>(bytes, format) {
        Ok(value) => {
            let new = Dynamic::of(&value).map_err(|e| e.to_string())?;
            Ok((value, crate::diff::compare(&old, &new)))
        }
        Err(error) => match M::migrate(from_version, old) {
            Ok(value) => {
                let why = format!("the state did not read by field name ({error})");
                Ok((value, FieldReport::migrated(from_version, version, why)))
            }
            Err(MigrateError::NotProvided) => Err(error.to_string()),
            Err(refused) => Err(format!(
                "{error}; the module's migrate hook refused it too: {refused}"
            )),
        },
    }
}
