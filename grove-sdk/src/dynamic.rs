//! [`Dynamic`]: a saved state read without its type, as the `migrate` hook receives it.
//!
//! A self-describing state is MessagePack with field names, so it reads back as a tree of
//! maps, sequences and scalars with nothing lost: integers keep their value, floats their
//! width and bits, and the explicit `Some`s of the format (`[x]` around an option or a
//! unit, see `by_name.rs`) stay as they were written. Writing a `Dynamic` back gives the
//! same bytes' meaning, so a part of it can be read as a typed value with the same rules as
//! a reload ([`Dynamic::to`], [`Dynamic::field`]).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::state::{StateError, StateFormat};

/// A value of a saved state, read without its type.
///
/// A struct is a [`Dynamic::Map`] keyed by its field names; an enum variant is its name
/// ([`Dynamic::Str`]) when it carries nothing, else a one-entry map from its name to what it
/// carries; `None` and `()` are [`Dynamic::Nil`]; an `i128` or `u128` is 16 big-endian
/// [`Dynamic::Bytes`]. Read typed parts with [`Dynamic::to`] or [`Dynamic::field`].
#[derive(Debug, Clone, PartialEq)]
pub enum Dynamic {
    /// `None`, `()`, a unit struct.
    Nil,
    /// A `bool`.
    Bool(bool),
    /// An integer of any width up to 64 bits, signed or not.
    Int(i128),
    /// An `f32`, bit for bit.
    F32(f32),
    /// An `f64`, bit for bit.
    F64(f64),
    /// A string, a `char`, or a variant's name.
    Str(String),
    /// Bytes written as bytes (`serialize_bytes`).
    Bytes(Vec<u8>),
    /// A sequence, a tuple, a tuple struct.
    Seq(Vec<Dynamic>),
    /// A map, a struct (keyed by field names), or a variant with data.
    Map(Vec<(Dynamic, Dynamic)>),
    /// A MessagePack extension: its type tag and data.
    Ext(i8, Vec<u8>),
}

impl Dynamic {
    /// Reads a self-describing state (what a reload carries, what a snapshot or
    /// `Engine::reload_fresh`'s file holds).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, StateError> {
        rmp_serde::from_slice(bytes).map_err(|e| StateError::Decode {
            format: StateFormat::SelfDescribing,
            message: e.to_string(),
        })
    }

    /// The self-describing encoding of this value: [`Dynamic::from_slice`] gives it back.
    pub fn to_vec(&self) -> Result<Vec<u8>, StateError> {
        rmp_serde::to_vec(self).map_err(|e| StateError::Encode {
            format: StateFormat::SelfDescribing,
            message: e.to_string(),
        })
    }

    /// The value of `T` saved by field name: the state of a module, or a part of it.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self, StateError> {
        let bytes = crate::by_name::to_vec(value).map_err(|e| StateError::Encode {
            format: StateFormat::SelfDescribing,
            message: e.to_string(),
        })?;
        Self::from_slice(&bytes)
    }

    /// Reads this value as a `T`, by field name, with the rules of a reload: missing fields
    /// of a `#[serde(default)]` type take their default, unknown ones are dropped, and a
    /// value `T` cannot hold is an error naming its field.
    pub fn to<T: de::DeserializeOwned>(&self) -> Result<T, StateError> {
        crate::state::load(&self.to_vec()?, StateFormat::SelfDescribing)
    }

    /// The value of the field (or map entry) named `name`, when this is a map that has it.
    pub fn get(&self, name: &str) -> Option<&Dynamic> {
        self.entries()?
            .iter()
            .find(|(key, _)| key.as_str() == Some(name))
            .map(|(_, value)| value)
    }

    /// Takes the field (or map entry) named `name` out of this map.
    pub fn take(&mut self, name: &str) -> Option<Dynamic> {
        let Dynamic::Map(entries) = self else {
            return None;
        };
        let at = entries
            .iter()
            .position(|(key, _)| key.as_str() == Some(name))?;
        Some(entries.remove(at).1)
    }

    /// The field `name` read as a `T` (see [`Dynamic::to`]); an error names the field when
    /// it is missing or cannot be read as a `T`.
    pub fn field<T: de::DeserializeOwned>(&self, name: &str) -> Result<T, StateError> {
        let value = self.get(name).ok_or_else(|| StateError::Field {
            path: name.to_owned(),
            message: format!("the old state has no field `{name}`"),
        })?;
        value.to().map_err(|e| match e {
            StateError::Field { path, message } => StateError::Field {
                path: format!("{name}.{path}"),
                message,
            },
            other => StateError::Field {
                path: name.to_owned(),
                message: other.to_string(),
            },
        })
    }

    /// The entries, when this is a map (a struct, a map, a variant with data).
    pub fn entries(&self) -> Option<&[(Dynamic, Dynamic)]> {
        match self {
            Dynamic::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The elements, when this is a sequence.
    pub fn elements(&self) -> Option<&[Dynamic]> {
        match self {
            Dynamic::Seq(elements) => Some(elements),
            _ => None,
        }
    }

    /// The text, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Dynamic::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number, when this is an integer.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Dynamic::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The number as an `f64`, when this is a float, or an integer an `f64` holds exactly.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Dynamic::F32(x) => Some(f64::from(x)),
            Dynamic::F64(x) => Some(x),
            Dynamic::Int(n) => {
                let x = n as f64;
                (x as i128 == n && x.abs() < 2f64.powi(127)).then_some(x)
            }
            _ => None,
        }
    }

    /// What kind of value this is, for messages: `integer`, `f32`, `map`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Dynamic::Nil => "nil",
            Dynamic::Bool(_) => "bool",
            Dynamic::Int(_) => "integer",
            Dynamic::F32(_) => "f32",
            Dynamic::F64(_) => "f64",
            Dynamic::Str(_) => "string",
            Dynamic::Bytes(_) => "bytes",
            Dynamic::Seq(_) => "sequence",
            Dynamic::Map(_) => "map",
            Dynamic::Ext(..) => "extension",
        }
    }
}

impl fmt::Display for Dynamic {
    /// A short rendering for messages: scalars in full, containers by size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dynamic::Nil => f.write_str("nil"),
            Dynamic::Bool(b) => write!(f, "{b}"),
            Dynamic::Int(n) => write!(f, "{n}"),
            Dynamic::F32(x) if x.is_nan() => write!(f, "NaN (f32 bits {:#010x})", x.to_bits()),
            Dynamic::F64(x) if x.is_nan() => write!(f, "NaN (f64 bits {:#018x})", x.to_bits()),
            Dynamic::F32(x) => write!(f, "{x:e} (f32)"),
            Dynamic::F64(x) => write!(f, "{x:e} (f64)"),
            Dynamic::Str(s) if s.chars().count() > 40 => {
                write!(f, "{:?}...", s.chars().take(40).collect::<String>())
            }
            Dynamic::Str(s) => write!(f, "{s:?}"),
            Dynamic::Bytes(b) => write!(f, "{} bytes", b.len()),
            Dynamic::Seq(items) => write!(f, "a sequence of {}", items.len()),
            Dynamic::Map(entries) => write!(f, "a map of {}", entries.len()),
            Dynamic::Ext(tag, data) => write!(f, "extension {tag} ({} bytes)", data.len()),
        }
    }
}

impl Serialize for Dynamic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Dynamic::Nil => serializer.serialize_unit(),
            Dynamic::Bool(b) => serializer.serialize_bool(*b),
            Dynamic::Int(n) => match (u64::try_from(*n), i64::try_from(*n)) {
                (Ok(n), _) => serializer.serialize_u64(n),
                (_, Ok(n)) => serializer.serialize_i64(n),
                _ => serializer.serialize_i128(*n),
            },
            Dynamic::F32(x) => serializer.serialize_f32(*x),
            Dynamic::F64(x) => serializer.serialize_f64(*x),
            Dynamic::Str(s) => serializer.serialize_str(s),
            Dynamic::Bytes(b) => serializer.serialize_bytes(b),
            Dynamic::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Dynamic::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Dynamic::Ext(tag, data) => serializer.serialize_newtype_struct(
                rmp_serde::MSGPACK_EXT_STRUCT_NAME,
                &(tag, serde_bytes_ref(data)),
            ),
        }
    }
}

/// Bytes serialized as bytes, not as a sequence of numbers.
fn serde_bytes_ref(data: &[u8]) -> impl Serialize + '_ {
    struct Raw<'a>(&'a [u8]);
    impl Serialize for Raw<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    Raw(data)
}

impl<'de> Deserialize<'de> for Dynamic {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DynamicVisitor)
    }
}

struct DynamicVisitor;

macro_rules! visit_int {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Dynamic, E> {
            Ok(Dynamic::Int(i128::from(v)))
        }
    )*};
}

impl<'de> Visitor<'de> for DynamicVisitor {
    type Value = Dynamic;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MessagePack value")
    }

    visit_int!(
        visit_i8: i8, visit_i16: i16, visit_i32: i32, visit_i64: i64,
        visit_u8: u8, visit_u16: u16, visit_u32: u32, visit_u64: u64,
    );

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Dynamic, E> {
        Ok(Dynamic::Bool(v))
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<Dynamic, E> {
        Ok(Dynamic::F32(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dynamic, E> {
        Ok(Dynamic::F64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Dynamic, E> {
        Ok(Dynamic::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Dynamic, E> {
        Ok(Dynamic::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Dynamic, E> {
        Ok(Dynamic::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Dynamic, E> {
        Ok(Dynamic::Bytes(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Dynamic, E> {
        Ok(Dynamic::Nil)
    }

    fn visit_none<E: de::Error>(self) -> Result<Dynamic, E> {
        Ok(Dynamic::Nil)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
        Dynamic::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dynamic, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Dynamic::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dynamic, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Dynamic::Map(entries))
    }

    /// rmp-serde hands an extension over as a newtype struct around `(tag, data)`.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
        d.deserialize_any(ExtVisitor)
    }
}

/// Reads an extension's `(tag, data)`.
struct ExtVisitor;

impl<'de> Visitor<'de> for ExtVisitor {
    type Value = Dynamic;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MessagePack extension")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dynamic, A::Error> {
        let tag: i8 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &"an extension's tag and data"))?;
        let data = match seq.next_element::<Dynamic>()? {
            Some(Dynamic::Bytes(data)) => data,
            _ => return Err(de::Error::invalid_length(1, &"an extension's tag and data")),
        };
        Ok(Dynamic::Ext(tag, data))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::state::{StateFormat, save};

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    #[serde(default)]
    struct Player {
        name: String,
        hp: f64,
        level: u8,
        best: Option<Option<u32>>,
        bag: Vec<(char, i128)>,
        tags: BTreeMap<u16, String>,
    }

    fn player() -> Player {
        Player {
            name: "ada".into(),
            hp: f64::from_bits(0x7ff8_0000_0000_0abc),
            level: 7,
            best: Some(None),
            bag: vec![('k', i128::MIN), ('\u{1f600}', -1)],
            tags: BTreeMap::from([(3, "x".into())]),
        }
    }

    #[test]
    fn reads_a_state_and_gives_it_back_unchanged() {
        let bytes = save(&player(), StateFormat::SelfDescribing).unwrap();
        let tree = Dynamic::from_slice(&bytes).unwrap();
        assert_eq!(tree.to_vec().unwrap(), bytes, "the same bytes");
        let back: Player = tree.to::<Player>().unwrap();
        assert_eq!(back.hp.to_bits(), 0x7ff8_0000_0000_0abc);
        assert_eq!(
            Player { hp: 0.0, ..back },
            Player {
                hp: 0.0,
                ..player()
            }
        );
    }

    #[test]
    fn fields_are_read_by_name_with_errors_naming_them() {
        let tree = Dynamic::of(&player()).unwrap();
        assert_eq!(tree.get("name").and_then(Dynamic::as_str), Some("ada"));
        assert_eq!(tree.get("level").and_then(Dynamic::as_int), Some(7));
        assert_eq!(
            tree.field::<Option<Option<u32>>>("best").unwrap(),
            Some(None)
        );
        assert_eq!(tree.field::<u64>("level").unwrap(), 7);
        let err = tree.field::<u32>("missing").unwrap_err();
        assert!(err.to_string().contains("`missing`"), "{err}");
        let err = tree.field::<String>("level").unwrap_err();
        assert!(err.to_string().contains("`level`"), "{err}");
        let mut tree = tree;
        assert_eq!(tree.take("level"), Some(Dynamic::Int(7)));
        assert_eq!(tree.get("level"), None);
    }

    #[test]
    fn as_f64_only_when_exact() {
        assert_eq!(
            Dynamic::Int(1 << 53).as_f64(),
            Some(9_007_199_254_740_992.0)
        );
        assert_eq!(Dynamic::Int((1 << 53) + 1).as_f64(), None);
        assert_eq!(Dynamic::F32(0.5).as_f64(), Some(0.5));
    }
}
