//! Module configuration, host side: where a module's config comes from (a watched file,
//! code, a partial update, its defaults), how a refusal is reported (file, line, field),
//! and the watch on config files.
//!
//! A config crosses to the module as a JSON table; the module decodes it over its config
//! type's `Default` and says what is now in force (every field), which the host keeps: it
//! is what [`Engine::config`](crate::Engine::config) answers, what a partial update merges
//! into, and what a new version receives after a reload, before its `init`. Nothing is
//! half-applied: the module either takes the whole config or keeps the one it had.

mod declared;
mod file;
mod watch;

use std::fmt;
use std::path::PathBuf;

use grove::abi::{ConfigApplied, ConfigIssue};
use serde_json::Value;

use crate::error::Error;
pub(crate) use declared::declared_config;
pub(crate) use file::ConfigText;
pub(crate) use watch::{ConfigWatcher, canonical_file};

/// Where a config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigOrigin {
    /// A config file ([`Engine::config_file`](crate::Engine::config_file)), read when it
    /// was given or saved.
    File(PathBuf),
    /// [`Engine::configure`](crate::Engine::configure).
    Code,
    /// [`Engine::configure_partial`](crate::Engine::configure_partial), merged into the
    /// config in force.
    Partial,
    /// The config type's defaults: no config was given.
    Defaults,
    /// The config in force, handed to the new version after a reload.
    Reload,
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigOrigin::File(path) => write!(f, "{}", path.display()),
            ConfigOrigin::Code => f.write_str("set from code"),
            ConfigOrigin::Partial => f.write_str("partial update from code"),
            ConfigOrigin::Defaults => f.write_str("the config type's defaults"),
            ConfigOrigin::Reload => f.write_str("the config in force, after a reload"),
        }
    }
}

/// Where a refused config's problem is: its origin, and for a file the line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLocation {
    /// Where the config came from.
    pub origin: ConfigOrigin,
    /// For a file: the 1-based line and column of the field (or of the syntax error).
    pub line_column: Option<(usize, usize)>,
}

impl fmt::Display for ConfigLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some((line, column)) = self.line_column {
            write!(f, ":{line}:{column}")?;
        }
        Ok(())
    }
}

/// The text of module `module`'s config file at `path`.
pub(crate) fn read_text(module: &str, path: &std::path::Path) -> crate::Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::ConfigFile {
        module: module.to_owned(),
        path: path.to_owned(),
        source: std::sync::Arc::new(source),
    })
}

/// A config to hand a module.
#[derive(Debug, Clone)]
pub(crate) struct GivenConfig {
    pub(crate) value: Value,
    /// For a partial update, the config in force it is read over.
    pub(crate) base: Option<Value>,
    pub(crate) origin: ConfigOrigin,
    /// The file's text, to point at the line of a field.
    text: Option<ConfigText>,
}

impl GivenConfig {
    pub(crate) fn new(value: Value, origin: ConfigOrigin) -> Self {
        Self {
            value,
            base: None,
            origin,
            text: None,
        }
    }

    /// A partial update: `patch` read over `in_force`.
    pub(crate) fn partial(in_force: Value, patch: Value) -> Self {
        Self {
            base: Some(in_force),
            ..Self::new(patch, ConfigOrigin::Partial)
        }
    }

    /// The `configure` mode and JSON to send: a partial update goes as
    /// `[config in force, patch]` in its own mode.
    pub(crate) fn wire(&self, mode: u32) -> (u32, Vec<u8>) {
        match &self.base {
            Some(base) => (
                grove::abi::CONFIG_PARTIAL,
                serde_json::to_vec(&[base, &self.value]).expect("JSON values are JSON"),
            ),
            None => (
                mode,
                serde_json::to_vec(&self.value).expect("a JSON value is JSON"),
            ),
        }
    }

    /// No config: the type's defaults.
    pub(crate) fn defaults() -> Self {
        Self::new(Value::Object(Default::default()), ConfigOrigin::Defaults)
    }

    /// Parses `text`, the content of the config file at `path`.
    pub(crate) fn from_text(
        module: &str,
        path: &std::path::Path,
        text: String,
    ) -> crate::Result<Self> {
        let origin = ConfigOrigin::File(path.to_owned());
        match ConfigText::parse(path, text) {
            Ok(text) => Ok(Self {
                value: text.value.clone(),
                base: None,
                origin,
                text: Some(text),
            }),
            Err(unreadable) => Err(Error::ConfigRefused {
                module: module.to_owned(),
                at: ConfigLocation {
                    origin,
                    line_column: unreadable.at,
                },
                issue: unreadable.issue,
            }),
        }
    }

    /// What became of this config, from what the module answered (`None`: it takes no
    /// config): the config in force, nothing to do (only the defaults were asked of a
    /// module without a config), or the error to return.
    pub(crate) fn settle(
        &self,
        module: &str,
        outcome: Option<std::result::Result<ConfigApplied, ConfigIssue>>,
    ) -> crate::Result<Option<ConfigApplied>> {
        match outcome {
            Some(Ok(applied)) => Ok(Some(applied)),
            Some(Err(issue)) => Err(self.refusal(module, issue)),
            None if self.origin == ConfigOrigin::Defaults => Ok(None),
            None => Err(Error::NoConfig {
                module: module.to_owned(),
            }),
        }
    }

    /// The error for `issue`, raised by this config: at the field's line in a file.
    pub(crate) fn refusal(&self, module: &str, issue: ConfigIssue) -> Error {
        let line_column = self.text.as_ref().and_then(|t| t.locate(&issue.field));
        Error::ConfigRefused {
            module: module.to_owned(),
            at: ConfigLocation {
                origin: self.origin.clone(),
                line_column,
            },
            issue,
        }
    }
}
