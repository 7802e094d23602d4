//! [`Over`]: a config read from what was given, with what it leaves out taken from a base
//! (the type's defaults, or the config in force for a partial update), struct by struct.
//!
//! Only structs are completed field by field: the deserializer knows a struct's field
//! names when the type asks for one. Anything else given (a map, a list, an enum, a
//! value) replaces the base's whole, so a map's default entries do not creep into a map
//! that was given, and an enum can be switched to another variant.

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// `given`, completed from `base` where `given` is a struct missing fields.
#[derive(Clone, Copy)]
pub(crate) struct Over<'a> {
    pub(crate) given: &'a Value,
    pub(crate) base: Option<&'a Value>,
}

type Error = serde_json::Error;

/// Forwards a deserialize call to `given` as it is: nothing to complete there.
macro_rules! to_given {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
                de::Deserializer::$method(self.given, visitor)
            }
        )*
    };
}

impl<'a> de::Deserializer<'a> for Over<'a> {
    type Error = Error;

    to_given! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_unit deserialize_seq deserialize_map deserialize_identifier
        deserialize_ignored_any
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.given {
            Value::Null => visitor.visit_none(),
            given => visitor.visit_some(Over {
                given,
                base: self.base.filter(|b| !b.is_null()),
            }),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match (self.given, self.base) {
            (Value::Object(given), Some(Value::Object(base))) => visitor.visit_map(Fields {
                given: given.iter(),
                missing: fields
                    .iter()
                    .filter(|f| !given.contains_key(**f))
                    .filter_map(|f| base.get_key_value(*f))
                    .collect::<Vec<_>>()
                    .into_iter(),
                base,
                value: None,
            }),
            (given, _) => de::Deserializer::deserialize_struct(given, name, fields, visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_unit_struct(self.given, name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_tuple(self.given, len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_tuple_struct(self.given, name, len, visitor)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_enum(self.given, name, variants, visitor)
    }
}

/// A struct's fields: those given (each completed from the base's value of that field),
/// then those only the base has.
struct Fields<'a, I> {
    given: I,
    missing: std::vec::IntoIter<(&'a String, &'a Value)>,
    base: &'a Map<String, Value>,
    value: Option<Over<'a>>,
}

impl<'a, I: Iterator<Item = (&'a String, &'a Value)>> MapAccess<'a> for Fields<'a, I> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let next = match self.given.next() {
            Some((key, given)) => Some((
                key,
                Over {
                    given,
                    base: self.base.get(key),
                },
            )),
            None => self.missing.next().map(|(key, base)| {
                (
                    key,
                    Over {
                        given: base,
                        base: None,
                    },
                )
            }),
        };
        let Some((key, value)) = next else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(key.as_str().into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value asked for before its key"))?;
        seed.deserialize(value)
    }
}
