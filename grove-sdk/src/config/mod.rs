//! Module configuration: the [`Configure`] trait, and how a config given as JSON becomes the
//! module's config type (by field name, missing fields from its `Default`).

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

mod over;

use crate::Module;
use crate::abi::{ConfigApplied, ConfigIssue, FieldPath, PathKey};

/// A module that takes a configuration from its host.
///
/// Declare it in the attribute, `#[grove::module(config = ParticleConfig)]`, and implement
/// this trait. The host hands the module its config (from a watched TOML or JSON file, or
/// from code) before the module's first `init`, after every reload before `init`, and
/// whenever it changes, between two frames. A config is read by field name: fields it does
/// not give take their value from `Config::default()`.
///
/// ```
/// use grove::prelude::*;
///
/// #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
/// pub struct ParticleConfig {
///     rate: f32,
///     max: usize,
/// }
///
/// #[grove::module(config = ParticleConfig)]
/// #[derive(Default)]
/// pub struct Particles {
///     #[serde(skip)]
///     config: ParticleConfig,
/// }
///
/// impl Configure for Particles {
///     type Config = ParticleConfig;
///
///     fn configure(&mut self, config: ParticleConfig) -> Result<(), ConfigError> {
///         if config.rate < 0.0 {
///             return Err(ConfigError::field("rate", "must be 0 or more"));
///         }
///         self.config = config;
///         Ok(())
///     }
/// }
///
/// impl Module for Particles {
///     fn process(&mut self, _ctx: &mut Context) {}
/// }
/// # let mut p = Particles::default();
/// # assert!(p.configure(ParticleConfig { rate: -1.0, max: 3 }).is_err());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` declares a config type but does not implement `grove::Configure`",
    label = "`grove::Configure` is not implemented for `{Self}`",
    note = "add `impl grove::Configure for {Self} {{ type Config = ...; fn configure(&mut self, config: Self::Config) -> Result<(), grove::ConfigError> {{ /* ... */ Ok(()) }} }}`"
)]
pub trait Configure: Module {
    /// The config: a serde type with a default (derive `Serialize`, `Deserialize` and
    /// `Default`). Fields a config does not give take their default.
    type Config: Serialize + DeserializeOwned + Default;

    /// Takes a new config. Return an error to refuse it: the host keeps the previous one in
    /// force (this module keeps what it had) and reports the error, naming the field when
    /// the error does ([`ConfigError::field`]). A panic refuses the config too.
    fn configure(&mut self, config: Self::Config) -> Result<(), ConfigError>;
}

/// Why a module refuses a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    field: Option<String>,
    message: String,
}

impl ConfigError {
    /// A refusal of the config as a whole.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }

    /// A refusal because of one field, in the dotted form `emitter.rate` (`layers[2]` for an
    /// element of a list): the host points at its line in the config file.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// The field, if the refusal names one.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// Why.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field `{field}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<String> for ConfigError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for ConfigError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

/// Decodes `given` as `M::Config` and hands it to `module`. What `given` leaves out of a
/// struct comes from `base` (the config in force, for a partial update) or else from
/// `Config::default()`. Strict (`lenient == false`): any unknown field or value the type
/// cannot take refuses the whole config. Lenient: such fields are dropped (they keep their
/// default) and listed in the result.
#[doc(hidden)]
pub fn apply<M: Configure>(
    module: &mut M,
    given: &Value,
    base: Option<&Value>,
    lenient: bool,
) -> Result<ConfigApplied, ConfigIssue> {
    let (config, in_force, dropped) = decode::<M::Config>(given, base, lenient)?;
    module.configure(config).map_err(|error| ConfigIssue {
        field: error
            .field
            .as_deref()
            .map(FieldPath::parse)
            .unwrap_or_default(),
        message: error.message,
    })?;
    Ok(ConfigApplied {
        config: in_force,
        dropped,
    })
}

fn root_issue(message: impl Into<String>) -> ConfigIssue {
    ConfigIssue {
        field: FieldPath::default(),
        message: message.into(),
    }
}

/// Decodes `given` over `base` (or `C::default()`); returns the config, what it encodes to
/// (the config in force) and, in lenient mode, what was dropped.
fn decode<C: Serialize + DeserializeOwned + Default>(
    given: &Value,
    base: Option<&Value>,
    lenient: bool,
) -> Result<(C, Value, Vec<ConfigIssue>), ConfigIssue> {
    let mut given = match given {
        Value::Object(_) => given.clone(),
        Value::Null => Value::Object(Map::new()),
        other => {
            return Err(root_issue(format!(
                "a config is a table of fields, not {}",
                kind(other)
            )));
        }
    };
    let default = serde_json::to_value(C::default()).map_err(|e| {
        root_issue(format!(
            "the config type's default cannot be written as a table: {e}"
        ))
    })?;
    let base = base.unwrap_or(&default);
    let mut dropped = Vec::new();
    // Each pass drops one field in lenient mode; a config has fewer fields than this.
    for _ in 0..1024 {
        let mut ignored = Vec::new();
        let mut record = |path: serde_ignored::Path<'_>| ignored.push(ignored_path(&path));
        let over = over::Over {
            given: &given,
            base: Some(base),
        };
        let decoded: Result<C, _> =
            serde_path_to_error::deserialize(serde_ignored::Deserializer::new(over, &mut record));
        let issue = match decoded {
            Ok(config) => {
                // Ignored keys that come from the base are the type's own business (a
                // field it writes but does not read); only the caller's are reported.
                ignored.retain(|path| lookup(&given, path).is_some());
                if let Some(path) = ignored.first().filter(|_| !lenient) {
                    return Err(unknown_field(path, &default));
                }
                dropped.extend(ignored.iter().map(|path| unknown_field(path, &default)));
                let in_force = serde_json::to_value(&config).map_err(|e| {
                    root_issue(format!("the config cannot be written back as a table: {e}"))
                })?;
                return Ok((config, in_force, dropped));
            }
            Err(error) => ConfigIssue {
                field: FieldPath(error.path().iter().filter_map(path_key).collect()),
                message: error.into_inner().to_string(),
            },
        };
        let removed = lenient
            .then(|| remove(&mut given, &issue.field.0))
            .flatten();
        let Some(removed) = removed else {
            return Err(issue);
        };
        let message = if removed == issue.field {
            format!("{}; it keeps its default", issue.message)
        } else {
            format!(
                "at `{}`: {}; it keeps its default",
                issue.field, issue.message
            )
        };
        dropped.push(ConfigIssue {
            field: removed,
            message,
        });
    }
    Err(root_issue("the config has too many fields that do not fit"))
}

fn unknown_field(path: &FieldPath, default: &Value) -> ConfigIssue {
    let parent = &path.0[..path.0.len().saturating_sub(1)];
    let known = match lookup(default, &FieldPath(parent.to_vec())) {
        Some(Value::Object(fields)) if !fields.is_empty() => {
            let names: Vec<&str> = fields.keys().map(String::as_str).collect();
            format!("; the fields here are: {}", names.join(", "))
        }
        _ => String::new(),
    };
    ConfigIssue {
        field: path.clone(),
        message: format!("unknown field{known}"),
    }
}

fn path_key(segment: &serde_path_to_error::Segment) -> Option<PathKey> {
    use serde_path_to_error::Segment;
    match segment {
        Segment::Seq { index } => Some(PathKey::Index(*index)),
        Segment::Map { key } | Segment::Enum { variant: key } => Some(PathKey::Key(key.clone())),
        Segment::Unknown => None,
    }
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> FieldPath {
    fn walk(path: &serde_ignored::Path<'_>, out: &mut Vec<PathKey>) {
        use serde_ignored::Path;
        match path {
            Path::Root => {}
            Path::Seq { parent, index } => {
                walk(parent, out);
                out.push(PathKey::Index(*index));
            }
            Path::Map { parent, key } => {
                walk(parent, out);
                out.push(PathKey::Key(key.clone()));
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => walk(parent, out),
        }
    }
    let mut keys = Vec::new();
    walk(path, &mut keys);
    FieldPath(keys)
}

/// The value at `path` in `value`.
fn lookup<'v>(value: &'v Value, path: &FieldPath) -> Option<&'v Value> {
    path.0
        .iter()
        .try_fold(value, |value, key| match (value, key) {
            (Value::Object(map), PathKey::Key(key)) => map.get(key),
            (Value::Array(list), PathKey::Index(index)) => list.get(*index),
            _ => None,
        })
}

/// Removes the field at `path` from `value` and returns the path removed; `None` when it
/// was not there. An element of a list cannot be removed without shifting the others: its
/// whole list goes instead.
fn remove(value: &mut Value, path: &[PathKey]) -> Option<FieldPath> {
    let end = path
        .iter()
        .position(|k| matches!(k, PathKey::Index(_)))
        .unwrap_or(path.len());
    let path = &path[..end];
    let (PathKey::Key(last), parents) = path.split_last()? else {
        return None;
    };
    let mut table = value;
    for key in parents {
        table = match (table, key) {
            (Value::Object(map), PathKey::Key(key)) => map.get_mut(key)?,
            _ => return None,
        };
    }
    match table {
        Value::Object(map) => map.remove(last).map(|_| FieldPath(path.to_vec())),
        _ => None,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Emitter {
        rate: f32,
        burst: u32,
    }

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Config {
        step: u64,
        label: Option<String>,
        emitter: Emitter,
        layers: Vec<String>,
    }

    fn strict(given: Value) -> Result<(Config, Value, Vec<ConfigIssue>), ConfigIssue> {
        decode::<Config>(&given, None, false)
    }

    #[test]
    fn missing_fields_take_their_default() {
        let (config, in_force, dropped) = strict(json!({"emitter": {"burst": 4}})).unwrap();
        assert_eq!(config.emitter.burst, 4);
        assert_eq!(config.step, 0);
        assert!(dropped.is_empty());
        assert_eq!(in_force["emitter"], json!({"rate": 0.0, "burst": 4}));
        assert_eq!(in_force["label"], Value::Null);
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_path_and_the_known_ones() {
        let issue = strict(json!({"emitter": {"rtae": 1.0}})).unwrap_err();
        assert_eq!(issue.field.to_string(), "emitter.rtae");
        assert!(
            issue.message.contains("fields here are: burst, rate"),
            "{issue}"
        );
    }

    #[test]
    fn a_wrong_type_is_refused_with_its_path() {
        let issue = strict(json!({"layers": ["a", 3]})).unwrap_err();
        assert_eq!(issue.field.to_string(), "layers[1]");
        assert!(issue.message.contains("invalid type"), "{issue}");
        let issue = strict(json!({"emitter": {"burst": "many"}})).unwrap_err();
        assert_eq!(issue.field.to_string(), "emitter.burst");
        let issue = strict(json!([1, 2])).unwrap_err();
        assert!(issue.field.is_root() && issue.message.contains("a list"));
    }

    #[test]
    fn lenient_drops_what_does_not_fit_and_says_so() {
        let given = json!({"step": "three", "emitter": {"rate": 2.5, "old": 1}, "label": "x"});
        let (config, _, dropped) = decode::<Config>(&given, None, true).unwrap();
        assert_eq!(config.step, 0, "kept its default");
        assert_eq!(config.emitter.rate, 2.5);
        assert_eq!(config.label.as_deref(), Some("x"));
        let fields: Vec<String> = dropped.iter().map(|d| d.field.to_string()).collect();
        assert_eq!(fields, ["step", "emitter.old"]);
        // An element of a list that does not fit drops the list, not a shifted element.
        let (config, _, dropped) =
            decode::<Config>(&json!({"layers": ["a", 3, "c"]}), None, true).unwrap();
        assert!(config.layers.is_empty());
        assert_eq!(dropped[0].field.to_string(), "layers");
        assert!(
            dropped[0].message.contains("at `layers[1]`"),
            "{}",
            dropped[0]
        );
    }

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    enum Mode {
        Fast,
        #[default]
        Slow,
        Custom {
            speed: u32,
        },
        Other {
            x: i32,
        },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rich {
        map: std::collections::BTreeMap<String, u32>,
        mode: Mode,
        inner: Option<Emitter>,
        step: u64,
    }

    impl Default for Rich {
        fn default() -> Self {
            Self {
                map: [("default_key".to_owned(), 1)].into(),
                mode: Mode::Custom { speed: 3 },
                inner: Some(Emitter {
                    rate: 7.0,
                    burst: 2,
                }),
                step: 1,
            }
        }
    }

    #[test]
    fn maps_and_enums_given_replace_the_defaults_whole() {
        let rich = |given: Value| decode::<Rich>(&given, None, false).map(|(c, _, _)| c);
        let config = rich(json!({"map": {"only": 3}})).unwrap();
        assert_eq!(
            config.map,
            [("only".to_owned(), 3)].into(),
            "no default key creeps in"
        );
        let config = rich(json!({"mode": {"Other": {"x": -1}}})).unwrap();
        assert_eq!(config.mode, Mode::Other { x: -1 });
        let config = rich(json!({"mode": "Fast"})).unwrap();
        assert_eq!(config.mode, Mode::Fast);
        // A struct inside an option still takes the default's missing fields.
        let config = rich(json!({"inner": {"burst": 9}})).unwrap();
        assert_eq!(
            config.inner,
            Some(Emitter {
                rate: 7.0,
                burst: 9
            })
        );
        let config = rich(json!({"inner": null})).unwrap();
        assert_eq!(config.inner, None);
    }

    #[test]
    fn a_partial_update_reads_over_the_config_in_force() {
        let (_, in_force, _) = decode::<Rich>(
            &json!({"step": 5, "mode": {"Other": {"x": 2}}}),
            None,
            false,
        )
        .unwrap();
        let (config, _, _) =
            decode::<Rich>(&json!({"map": {"k": 4}}), Some(&in_force), false).unwrap();
        assert_eq!(config.step, 5, "kept from the config in force");
        assert_eq!(config.mode, Mode::Other { x: 2 });
        assert_eq!(config.map, [("k".to_owned(), 4)].into());
        let error = decode::<Rich>(&json!({"stpe": 1}), Some(&in_force), false).unwrap_err();
        assert_eq!(error.field.to_string(), "stpe");
    }
}
