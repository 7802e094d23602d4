//! [`StatePolicy`]: what the host lets a new version do to the state it takes over, judged
//! from the module's [`FieldReport`].

use grove::state::FieldReport;

use crate::error::{Error, Result};

/// What to do when a new version cannot hold some values of the state exactly (an `f64`
/// of 1e300 read as an `f32` becomes infinity; a `u64` above 2^53 read as an `f64` loses
/// its low bits). See [`EngineBuilder::lossy_state`](crate::EngineBuilder::lossy_state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LossyPolicy {
    /// Take the new version and log a warning naming each value (the default).
    #[default]
    Warn,
    /// Refuse the reload: the running version keeps its state.
    Refuse,
}

/// The host's rules for a state carried to a new version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatePolicy {
    /// Values the new version cannot hold exactly.
    pub lossy: LossyPolicy,
    /// Whether a new version whose state shares no field with the running one's (another
    /// type under the same module name, most likely) may take over, starting from its
    /// default. Refused by default.
    pub allow_unrelated: bool,
}

impl StatePolicy {
    /// Checks what a restore of module `module`'s state did, from the type `old_type` to
    /// `new_type`. `None` (a module built before field reports existed) passes.
    pub(crate) fn check(
        &self,
        module: &str,
        old_type: &str,
        new_type: &str,
        report: Option<&FieldReport>,
    ) -> Result<()> {
        let Some(report) = report else {
            return Ok(());
        };
        if report.unrelated && !self.allow_unrelated {
            return Err(Error::UnrelatedState {
                module: module.to_owned(),
                old_type: old_type.to_owned(),
                new_type: new_type.to_owned(),
                report: Box::new(report.clone()),
            });
        }
        if report.is_lossy() && self.lossy == LossyPolicy::Refuse {
            return Err(Error::LossyState {
                module: module.to_owned(),
                report: Box::new(report.clone()),
            });
        }
        Ok(())
    }
}

/// The lossy values of `report`, for a message: `` `speed`: 1e300 (f64) -> inf (f32) ``.
pub(crate) fn lossy_values(report: &FieldReport) -> String {
    let mut listed: Vec<String> = report
        .lossy
        .iter()
        .map(|l| format!("`{}`: {} -> {}", l.path, l.was, l.now))
        .collect();
    let more = report.lossy_total.saturating_sub(report.lossy.len() as u64);
    if more > 0 {
        listed.push(format!("{more} more"));
    }
    listed.join("; ")
}

/// What a report of an unrelated state suggests: the renames it saw, if any.
pub(crate) fn rename_hint(report: &FieldReport) -> String {
    let hints: Vec<String> = report
        .renamed
        .iter()
        .filter(|r| !r.kept)
        .map(|r| {
            format!(
                "add #[serde(alias = \"{}\")] to `{}`",
                r.old_name(),
                r.new_name()
            )
        })
        .collect();
    if hints.is_empty() {
        String::new()
    } else {
        format!(" (renamed fields? {})", hints.join(", "))
    }
}
