//! [`FieldReport`]: what a restore did to a state's fields, field by field.
//!
//! A module computes it when it reads a state saved by another version (it alone knows
//! both: the old state's fields by name, and its own type), and hands it to the host with
//! the outcome of the restore; the host logs it, puts it in its `Reloaded` event, and
//! applies its policy (refuse lossy changes, or a state that shares no field).

use std::fmt;

use serde::{Deserialize, Serialize};

/// At most this many entries per list; the counts say how many there were in all.
pub const REPORT_LIMIT: usize = 32;

/// What became of a state's fields when a version read the state of another.
///
/// Paths name fields from the state's root (`player.inventory[3].weight`). In
/// `added`, `removed` and `renamed`, an element of a sequence or an entry of a map whose
/// keys are not strings is written `[*]`, so a field that every enemy lost is one entry
/// (`enemies[*].hp`) with a count; in `lossy`, each value has its own path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct FieldReport {
    /// Fields the new version has and the old state did not: they took their default.
    pub added: Vec<AddedField>,
    /// Fields of the old state the new version does not have: dropped.
    pub removed: Vec<RemovedField>,
    /// A removed and an added field of the same kind, alone of that kind under the same
    /// parent: probably one field renamed.
    pub renamed: Vec<RenamedField>,
    /// Numbers the new type could not hold exactly (the first [`REPORT_LIMIT`]).
    pub lossy: Vec<LossyValue>,
    /// How many numbers were lossy in all.
    pub lossy_total: u64,
    /// The old state is a struct with fields, and the new one shares none of them: all of
    /// it was dropped and the new version starts from its default (another type under the
    /// same module name, most likely).
    pub unrelated: bool,
    /// Set when the module's `migrate` hook built the new state: the other lists are then
    /// empty (the hook decided what to keep).
    pub migrated: Option<Migration>,
    /// Entries left out of `added`, `removed` and `renamed` past [`REPORT_LIMIT`] each.
    pub truncated: u64,
}

/// A field that took its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AddedField {
    /// Its path.
    pub path: String,
    /// How many values took their default under that path (one per element, for a field
    /// of the elements of a sequence).
    pub count: u64,
}

/// A field that was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemovedField {
    /// Its path.
    pub path: String,
    /// How many values were dropped under that path.
    pub count: u64,
    /// Their size in the self-describing encoding, in bytes, all of them together.
    pub bytes: u64,
}

/// A field that was probably renamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RenamedField {
    /// Its old path.
    pub from: String,
    /// Its new path.
    pub to: String,
    /// Whether the new field holds the old value (the new version reads the old name
    /// through `#[serde(alias = "...")]`, or the default happens to be the same).
    pub kept: bool,
}

impl RenamedField {
    /// The last segment of the old path: the name for `#[serde(alias = "...")]`.
    pub fn old_name(&self) -> &str {
        last_segment(&self.from)
    }

    /// The last segment of the new path.
    pub fn new_name(&self) -> &str {
        last_segment(&self.to)
    }
}

fn last_segment(path: &str) -> &str {
    path.rsplit(['.', '[']).next().unwrap_or(path)
}

/// A number that did not survive translation exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LossyValue {
    /// Its path.
    pub path: String,
    /// The old value, as the old state held it (`1e300 (f64)`).
    pub was: String,
    /// The new value (`inf (f32)`).
    pub now: String,
}

/// The module's `migrate` hook built the new state from the old one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Migration {
    /// The version the old state was saved by (0: an SDK without versions).
    pub from_version: u32,
    /// The new version.
    pub to_version: u32,
    /// Why it was called: the versions differ, or the state did not read by field name.
    pub reason: String,
}

impl FieldReport {
    /// A report of a migration by the module's hook.
    pub fn migrated(from_version: u32, to_version: u32, reason: String) -> Self {
        Self {
            migrated: Some(Migration {
                from_version,
                to_version,
                reason,
            }),
            ..Self::default()
        }
    }

    /// Whether nothing changed: every field read as it was.
    pub fn is_unchanged(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.renamed.is_empty()
            && self.lossy_total == 0
            && !self.unrelated
            && self.migrated.is_none()
    }

    /// Whether some value changed in translation.
    pub fn is_lossy(&self) -> bool {
        self.lossy_total > 0
    }

    /// The encoding that crosses the ABI.
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a report is plain data")
    }

    /// Reads what [`FieldReport::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    }
}

impl fmt::Display for FieldReport {
    /// One line: `added `label` (default); removed `name` (12 bytes); ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(m) = &self.migrated {
            return write!(
                f,
                "migrated by the module's hook from version {} to {} ({})",
                m.from_version, m.to_version, m.reason
            );
        }
        if self.is_unchanged() {
            return f.write_str("every field read as it was");
        }
        let mut parts = Vec::new();
        if self.unrelated {
            parts.push("shares no field with the old state: all of it dropped".to_owned());
        }
        let times = |count: u64| {
            if count > 1 {
                format!(" x{count}")
            } else {
                String::new()
            }
        };
        for a in &self.added {
            parts.push(format!("added `{}` (default{})", a.path, times(a.count)));
        }
        for r in &self.removed {
            parts.push(format!(
                "removed `{}` ({} bytes{})",
                r.path,
                r.bytes,
                times(r.count)
            ));
        }
        for r in &self.renamed {
            if r.kept {
                parts.push(format!("renamed `{}` -> `{}` (value kept)", r.from, r.to));
            } else {
                parts.push(format!(
                    "probably renamed `{}` -> `{}` (its value was dropped: add \
                     #[serde(alias = \"{}\")] to `{}` to keep it)",
                    r.from,
                    r.to,
                    r.old_name(),
                    r.new_name()
                ));
            }
        }
        for l in &self.lossy {
            parts.push(format!("lossy `{}`: {} -> {}", l.path, l.was, l.now));
        }
        let listed = self.lossy.len() as u64;
        if self.lossy_total > listed {
            parts.push(format!("{} more lossy values", self.lossy_total - listed));
        }
        if self.truncated > 0 {
            parts.push(format!("{} more changed fields", self.truncated));
        }
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_crosses_the_abi_and_reads_as_a_line() {
        let report = FieldReport {
            added: vec![AddedField {
                path: "label".into(),
                count: 1,
            }],
            renamed: vec![RenamedField {
                from: "units[*].hp".into(),
                to: "units[*].health".into(),
                kept: false,
            }],
            lossy: vec![LossyValue {
                path: "speed".into(),
                was: "1e300 (f64)".into(),
                now: "inf (f32)".into(),
            }],
            lossy_total: 3,
            ..FieldReport::default()
        };
        assert_eq!(FieldReport::decode(&report.encode()).unwrap(), report);
        assert_eq!(
            report.to_string(),
            "added `label` (default); probably renamed `units[*].hp` -> `units[*].health` \
             (its value was dropped: add #[serde(alias = \"hp\")] to `health` to keep it); \
             lossy `speed`: 1e300 (f64) -> inf (f32); 2 more lossy values"
        );
        assert!(FieldReport::default().is_unchanged());
    }
}
