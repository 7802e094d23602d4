//! Reading a config file: TOML (or JSON, by the `.json` extension) into the table of
//! fields handed to a module, and finding the line a field is on for error messages.

use std::path::Path;

use grove::abi::{ConfigIssue, FieldPath, PathKey};
use serde_json::{Map, Number, Value};

/// A config file's text, parsed.
#[derive(Debug, Clone)]
pub(crate) struct ConfigText {
    text: String,
    json: bool,
    /// The fields, as handed to the module.
    pub(crate) value: Value,
}

/// Why a file's text is not a config: what is wrong, where.
#[derive(Debug, Clone)]
pub(crate) struct Unreadable {
    pub(crate) issue: ConfigIssue,
    /// 1-based line and column.
    pub(crate) at: Option<(usize, usize)>,
}

impl ConfigText {
    /// Parses `text`, read from `path` (whose extension says TOML or JSON).
    pub(crate) fn parse(path: &Path, text: String) -> Result<Self, Unreadable> {
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let value = if json {
            parse_json(&text)?
        } else {
            parse_toml(&text)?
        };
        if !value.is_object() {
            return Err(Unreadable {
                issue: issue(
                    FieldPath::default(),
                    "a config file holds a table of fields",
                ),
                at: Some((1, 1)),
            });
        }
        Ok(Self { text, json, value })
    }

    /// The line and column of `field` in the file: of its key, or of its nearest parent
    /// found there (a field the file does not give is reported at the table that would
    /// hold it). `None` for JSON files and fields outside any table written in the file.
    pub(crate) fn locate(&self, field: &FieldPath) -> Option<(usize, usize)> {
        if self.json {
            return None;
        }
        locate_in_toml(&self.text, field)
    }
}

fn locate_in_toml(text: &str, field: &FieldPath) -> Option<(usize, usize)> {
    let table = toml::de::DeTable::parse(text).ok()?;
    let mut found = None;
    let mut value: Option<&toml::de::DeValue<'_>> = None;
    let mut table = Some(table.get_ref());
    for key in &field.0 {
        let next = match (key, table, value) {
            (PathKey::Key(name), Some(t), _) => t
                .iter()
                .find(|(k, _)| k.get_ref() == name)
                .map(|(k, v)| (k.span(), v)),
            (PathKey::Index(i), _, Some(toml::de::DeValue::Array(list))) => {
                list.get(*i).map(|v| (v.span(), v))
            }
            _ => None,
        };
        let Some((span, next)) = next else { break };
        found = Some(span.start);
        value = Some(next.get_ref());
        table = match next.get_ref() {
            toml::de::DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    found.map(|offset| line_column(text, offset))
}

fn issue(field: FieldPath, message: impl Into<String>) -> ConfigIssue {
    ConfigIssue {
        field,
        message: message.into(),
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

fn parse_json(text: &str) -> Result<Value, Unreadable> {
    serde_json::from_str(text).map_err(|e| Unreadable {
        at: (e.line() > 0).then_some((e.line(), e.column())),
        issue: issue(FieldPath::default(), format!("not valid JSON: {e}")),
    })
}

fn parse_toml(text: &str) -> Result<Value, Unreadable> {
    let table: toml::Table = toml::from_str(text).map_err(|e| Unreadable {
        at: e.span().map(|span| line_column(text, span.start)),
        issue: issue(
            FieldPath::default(),
            format!("not valid TOML: {}", e.message()),
        ),
    })?;
    let mut path = Vec::new();
    let value = to_json(toml::Value::Table(table), &mut path).map_err(|issue| Unreadable {
        at: locate_in_toml(text, &issue.field),
        issue,
    })?;
    Ok(value)
}

/// TOML to the JSON model modules decode from. Datetimes become their text; a float that
/// is not finite has no JSON form and is refused rather than changed.
fn to_json(value: toml::Value, path: &mut Vec<PathKey>) -> Result<Value, ConfigIssue> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::Number(i.into()),
        toml::Value::Float(f) => Value::Number(Number::from_f64(f).ok_or_else(|| {
            issue(
                FieldPath(path.clone()),
                format!("{f} cannot be given in a config (only finite numbers can)"),
            )
        })?),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (index, item) in list.into_iter().enumerate() {
                path.push(PathKey::Index(index));
                out.push(to_json(item, path)?);
                path.pop();
            }
            Value::Array(out)
        }
        toml::Value::Table(table) => {
            let mut out = Map::new();
            for (key, item) in table {
                path.push(PathKey::Key(key.clone()));
                out.insert(key, to_json(item, path)?);
                path.pop();
            }
            Value::Object(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml(text: &str) -> Result<ConfigText, Unreadable> {
        ConfigText::parse(Path::new("c.toml"), text.to_owned())
    }

    #[test]
    fn fields_are_found_on_their_lines() {
        let text = "step = 2\n\n[emitter]\nrate = 1.5\nlayers = [\"a\", \"b\"]\n";
        let config = toml(text).unwrap();
        assert_eq!(config.value["emitter"]["rate"], 1.5);
        let at = |p: &str| config.locate(&FieldPath::parse(p));
        assert_eq!(at("step"), Some((1, 1)));
        assert_eq!(at("emitter.rate"), Some((4, 1)));
        assert_eq!(at("emitter.layers[1]"), Some((5, 16)));
        assert_eq!(at("emitter.missing"), Some((3, 2)), "its table");
        assert_eq!(at("nowhere"), None);
    }

    #[test]
    fn syntax_errors_say_where() {
        let error = toml("step = 2\nrate = = 3\n").unwrap_err();
        assert_eq!(error.at.map(|a| a.0), Some(2));
        assert!(
            error.issue.message.starts_with("not valid TOML"),
            "{:?}",
            error.issue
        );
        let error = ConfigText::parse(Path::new("c.json"), "{\n \"a\": }".into()).unwrap_err();
        assert_eq!(error.at.map(|a| a.0), Some(2));
    }

    #[test]
    fn values_without_a_json_form_are_refused_not_changed() {
        let error = toml("[physics]\ngravity = nan\n").unwrap_err();
        assert_eq!(error.issue.field.to_string(), "physics.gravity");
        assert_eq!(error.at, Some((2, 1)));
        let config = toml("when = 1979-05-27T07:32:00Z\n").unwrap();
        assert_eq!(config.value["when"], "1979-05-27T07:32:00Z");
    }
}
