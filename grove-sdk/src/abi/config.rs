//! What crosses the boundary for configuration and health. A config goes in as JSON text,
//! and [`ConfigApplied`] or a [`ConfigIssue`] comes back, as JSON too; a health report
//! comes back as MessagePack with field names ([`encode_health`]), which keeps every `f64`
//! metric exact (NaN and infinities included). Both sides decode these by field name, so
//! either may add fields.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Health;

/// `mode` of the vtable's `configure`: an unknown field or a value of the wrong type
/// refuses the config. For configs a user just gave (a file saved, `Engine::configure`).
pub const CONFIG_STRICT: u32 = 0;

/// `mode` of the vtable's `configure`: a partial update, strict. `config` is the JSON array
/// `[config in force, patch]`: the patch is read over the config in force, struct by
/// struct (a map, list or enum in the patch replaces the one in force).
pub const CONFIG_PARTIAL: u32 = 2;

/// `mode` of the vtable's `configure`: an unknown field, or a value the config type cannot
/// take, is dropped (the field keeps its default) and reported in
/// [`ConfigApplied::dropped`]. For the config in force handed to a new version after a
/// reload, whose config type may have changed.
pub const CONFIG_LENIENT: u32 = 1;

/// One step of the path to a field: a key of a table or an index into a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PathKey {
    /// A key of a table (a struct field or a map key).
    Key(String),
    /// An index into a list.
    Index(usize),
}

/// Where in a config a field is: `emitter.rate`, `layers[2].name`. Empty for the config as
/// a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldPath(pub Vec<PathKey>);

impl FieldPath {
    /// Whether this is the config as a whole.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the dotted form `emitter.rate` (as [`ConfigError::field`](crate::ConfigError::field)
    /// takes it); `layers[2]` and `layers.2` are both index 2 of `layers`.
    pub fn parse(dotted: &str) -> Self {
        let mut keys = Vec::new();
        for part in dotted.split('.').filter(|p| !p.is_empty()) {
            let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
            if !name.is_empty() {
                keys.push(match name.parse::<usize>() {
                    Ok(index) => PathKey::Index(index),
                    Err(_) => PathKey::Key(name.to_owned()),
                });
            }
            while let Some((index, after)) = rest.split_once(']') {
                match index.parse::<usize>() {
                    Ok(index) => keys.push(PathKey::Index(index)),
                    Err(_) => keys.push(PathKey::Key(index.to_owned())),
                }
                rest = after.trim_start_matches('[');
            }
        }
        Self(keys)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, key) in self.0.iter().enumerate() {
            match key {
                PathKey::Key(key) if i == 0 => write!(f, "{key}")?,
                PathKey::Key(key) => write!(f, ".{key}")?,
                PathKey::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A problem with one field of a config: why a config was refused, or (in lenient mode)
/// why a field was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigIssue {
    /// The field; empty for the config as a whole.
    pub field: FieldPath,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_root() {
            f.write_str(&self.message)
        } else {
            write!(f, "field `{}`: {}", self.field, self.message)
        }
    }
}

/// A config the module took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigApplied {
    /// The config now in force, every field included (defaults for those not given).
    pub config: serde_json::Value,
    /// Fields dropped in lenient mode, each with why; always empty in strict mode.
    #[serde(default)]
    pub dropped: Vec<ConfigIssue>,
}

/// A health report as the vtable's `health` writes it.
pub fn encode_health(health: &Health) -> Vec<u8> {
    rmp_serde::to_vec_named(health).expect("a health report is plain data")
}

/// A health report written by [`encode_health`].
pub fn decode_health(bytes: &[u8]) -> Result<Health, String> {
    rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_and_print_alike() {
        for text in ["step", "emitter.rate", "layers[2].name", "grid[1][3]"] {
            assert_eq!(FieldPath::parse(text).to_string(), text);
        }
        assert_eq!(
            FieldPath::parse("layers.2.name"),
            FieldPath::parse("layers[2].name")
        );
        assert!(FieldPath::parse("").is_root());
    }

    #[test]
    fn health_reports_keep_every_metric_exact() {
        let report = crate::Health::failed("down")
            .metric("nan", f64::from_bits(0x7ff8_0000_0000_0123))
            .metric("neg_zero", -0.0)
            .metric("inf", f64::INFINITY);
        let back = decode_health(&encode_health(&report)).unwrap();
        assert_eq!(back.status(), report.status());
        let bits = |h: &crate::Health| {
            h.metrics()
                .iter()
                .map(|(_, v)| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&back), bits(&report));
    }
}
