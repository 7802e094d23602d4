//! The self-describing state format: MessagePack with field names (rmp-serde), with the
//! `Some`s MessagePack would lose written out.
//!
//! MessagePack, like JSON, writes `Some(x)` as `x` and `None` as `nil`, so when `x` is
//! itself written as `nil` (`None`, `()`, a newtype around either) `Some(x)` comes back as
//! `None`: `Some(None)` and `Some(())` are lost. Here, `Some(x)` is written as the
//! one-element array `[x]` exactly when `x`'s type is one of those (an `Option`, `()`, or a
//! newtype struct around one), and as `x` otherwise, so the common `Option<u32>` costs
//! nothing and a field that becomes optional in a new version still reads its old value.
//! The reader knows which from the type it is asked for: the payload of a `Some` whose
//! type asks for an option or a unit is unwrapped from its array.
//!
//! Both sides are thin wrappers around rmp-serde's serializer and deserializer that see
//! every nested value. A type that reads itself with `deserialize_any` (untagged enums,
//! `#[serde(flatten)]`) sees the array instead: see the crate's "Known problems".

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde::ser::{self, Serialize, Serializer};

/// Encodes `value`, fields by name.
pub(crate) fn to_vec<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut out = Vec::with_capacity(256);
    let mut serializer = rmp_serde::Serializer::new(&mut out).with_struct_map();
    Explicit(value).serialize(&mut serializer)?;
    Ok(out)
}

/// A value serialized with its `Some`s written out.
pub(crate) struct Explicit<'a, T: ?Sized>(pub(crate) &'a T);

impl<T: Serialize + ?Sized> Serialize for Explicit<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Tag(serializer))
    }
}

/// Whether a value's type is written as `nil` (or as a wrapped `Some`): what `Some` must
/// be explicit around. Only the first call of a value's `Serialize` is looked at.
fn nil_like<T: Serialize + ?Sized>(value: &T) -> bool {
    value.serialize(NilProbe).unwrap_or(false)
}

/// The serializer or deserializer `S`, seeing every nested value through this module.
pub(crate) struct Tag<S>(S);

macro_rules! forward_ser {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.0.$method(v)
        }
    )*};
}

impl<S: Serializer> Serializer for Tag<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Tag<S::SerializeSeq>;
    type SerializeTuple = Tag<S::SerializeTuple>;
    type SerializeTupleStruct = Tag<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Tag<S::SerializeTupleVariant>;
    type SerializeMap = Tag<S::SerializeMap>;
    type SerializeStruct = Tag<S::SerializeStruct>;
    type SerializeStructVariant = Tag<S::SerializeStructVariant>;

    forward_ser!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str, serialize_bytes: &[u8],
        serialize_unit_struct: &'static str,
    );

    #[inline]
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        if nil_like(value) {
            use ser::SerializeTuple;
            let mut wrapped = self.0.serialize_tuple(1)?;
            wrapped.serialize_element(&Explicit(value))?;
            wrapped.end()
        } else {
            value.serialize(self)
        }
    }

    #[inline]
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Explicit(value))
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Explicit(value))
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Tag)
    }

    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Tag)
    }

    #[inline]
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Tag)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Tag)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Tag)
    }

    #[inline]
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Tag)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Tag)
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! compound {
    ($($trait:ident: $method:ident),* $(,)?) => {$(
        impl<C: ser::$trait> ser::$trait for Tag<C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                self.0.$method(&Explicit(value))
            }


            #[inline]
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
}

compound!(
    SerializeSeq: serialize_element,
    SerializeTuple: serialize_element,
    SerializeTupleStruct: serialize_field,
    SerializeTupleVariant: serialize_field,
);

macro_rules! named_compound {
    ($($trait:ident),* $(,)?) => {$(
        impl<C: ser::$trait> ser::$trait for Tag<C> {
            type Ok = C::Ok;
            type Error = C::Error;


            #[inline]
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), C::Error> {
                self.0.serialize_field(key, &Explicit(value))
            }


            #[inline]
            fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
                self.0.skip_field(key)
            }


            #[inline]
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
}

named_compound!(SerializeStruct, SerializeStructVariant);

impl<C: ser::SerializeMap> ser::SerializeMap for Tag<C> {
    type Ok = C::Ok;
    type Error = C::Error;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.0.serialize_key(&Explicit(key))
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        self.0.serialize_value(&Explicit(value))
    }

    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

/// Answers [`nil_like`]: `Ok(true)` for an option or a unit, through newtype structs;
/// `Ok(false)` for any other value, or an error at the first call of a compound one.
struct NilProbe;

#[derive(Debug)]
struct NotNil;

impl fmt::Display for NotNil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not written as nil")
    }
}

impl std::error::Error for NotNil {}

impl ser::Error for NotNil {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotNil
    }
}

macro_rules! not_nil {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method(self, _: $ty) -> Result<bool, NotNil> {
            Ok(false)
        }
    )*};
}

impl Serializer for NilProbe {
    type Ok = bool;
    type Error = NotNil;
    type SerializeSeq = ser::Impossible<bool, NotNil>;
    type SerializeTuple = ser::Impossible<bool, NotNil>;
    type SerializeTupleStruct = ser::Impossible<bool, NotNil>;
    type SerializeTupleVariant = ser::Impossible<bool, NotNil>;
    type SerializeMap = ser::Impossible<bool, NotNil>;
    type SerializeStruct = ser::Impossible<bool, NotNil>;
    type SerializeStructVariant = ser::Impossible<bool, NotNil>;

    not_nil!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str, serialize_bytes: &[u8],
        serialize_unit_struct: &'static str,
    );

    #[inline]
    fn serialize_none(self) -> Result<bool, NotNil> {
        Ok(true)
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<bool, NotNil> {
        Ok(true)
    }

    #[inline]
    fn serialize_unit(self) -> Result<bool, NotNil> {
        Ok(true)
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<bool, NotNil> {
        Ok(false)
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<bool, NotNil> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<bool, NotNil> {
        Ok(false)
    }

    #[inline]
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotNil> {
        Err(NotNil)
    }

    #[inline]
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotNil> {
        Err(NotNil)
    }

    #[inline]
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotNil> {
        Err(NotNil)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotNil> {
        Err(NotNil)
    }

    #[inline]
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotNil> {
        Err(NotNil)
    }

    #[inline]
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotNil> {
        Err(NotNil)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotNil> {
        Err(NotNil)
    }

    #[inline]
    fn collect_str<T: fmt::Display + ?Sized>(self, _: &T) -> Result<bool, NotNil> {
        Ok(false)
    }
}

// Reading.

/// The deserializer `D`, seeing every nested value through this module.
pub(crate) struct Untag<D>(pub(crate) D);

/// The payload of a `Some`: unwrapped from its array when its type asks for an option or
/// a unit (see the module's docs).
struct Payload<D>(D);

macro_rules! forward_de {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Wrap(visitor))
        }
    )*};
}

macro_rules! forward_de_with_args {
    () => {
        #[inline]
        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            self.0.deserialize_unit_struct(name, Wrap(visitor))
        }

        #[inline]
        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            len: usize,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            self.0.deserialize_tuple(len, Wrap(visitor))
        }

        #[inline]
        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            len: usize,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            self.0.deserialize_tuple_struct(name, len, Wrap(visitor))
        }

        #[inline]
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            self.0.deserialize_struct(name, fields, Wrap(visitor))
        }

        #[inline]
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            self.0.deserialize_enum(name, variants, Wrap(visitor))
        }

        #[inline]
        fn is_human_readable(&self) -> bool {
            self.0.is_human_readable()
        }
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Untag<D> {
    type Error = D::Error;

    forward_de!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );
    forward_de_with_args!();

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_option(Wrap(visitor))
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(visitor))
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Payload<D> {
    type Error = D::Error;

    // Only an option or a unit is written wrapped; everything else reads as usual.
    forward_de!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );
    forward_de_with_args!();

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(
            1,
            Unwrap {
                visitor,
                unit: false,
            },
        )
    }

    #[inline]
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(
            1,
            Unwrap {
                visitor,
                unit: true,
            },
        )
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        if name == rmp_serde::MSGPACK_EXT_STRUCT_NAME {
            return Untag(self.0).deserialize_newtype_struct(name, visitor);
        }
        // Transparent: what the inner type asks for decides.
        visitor.visit_newtype_struct(self)
    }
}

/// Reads `[x]`, the explicit `Some` around an option or a unit, and hands `x` to `visitor`.
struct Unwrap<V> {
    visitor: V,
    unit: bool,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Unwrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a one-element array around an option or a unit")
    }

    #[inline]
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<V::Value, A::Error> {
        let value = seq
            .next_element_seed(self)?
            .ok_or_else(|| de::Error::invalid_length(0, &"one element"))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(2, &"one element"));
        }
        Ok(value)
    }
}

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for Unwrap<V> {
    type Value = V::Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        if self.unit {
            Untag(d).deserialize_unit(self.visitor)
        } else {
            Untag(d).deserialize_option(self.visitor)
        }
    }
}

/// A visitor whose nested values are read through this module.
struct Wrap<V>(V);

macro_rules! forward_visit {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_visit!(
        visit_bool: bool, visit_i8: i8, visit_i16: i16, visit_i32: i32, visit_i64: i64,
        visit_i128: i128, visit_u8: u8, visit_u16: u16, visit_u32: u32, visit_u64: u64,
        visit_u128: u128, visit_f32: f32, visit_f64: f64, visit_char: char, visit_str: &str,
        visit_borrowed_str: &'de str, visit_string: String, visit_bytes: &[u8],
        visit_borrowed_bytes: &'de [u8], visit_byte_buf: Vec<u8>,
    );

    #[inline]
    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    #[inline]
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(Payload(d))
    }

    #[inline]
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    #[inline]
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(Untag(d))
    }

    #[inline]
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Untag(seq))
    }

    #[inline]
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Untag(map))
    }

    #[inline]
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Untag(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Untag<S> {
    type Value = S::Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Untag(d))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Untag<A> {
    type Error = A::Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Untag(seed))
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Untag<A> {
    type Error = A::Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Untag(seed))
    }

    #[inline]
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Untag(seed))
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Untag<A> {
    type Error = A::Error;
    type Variant = Untag<A::Variant>;

    #[inline]
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Untag<A::Variant>), A::Error> {
        let (value, variant) = self.0.variant_seed(Untag(seed))?;
        Ok((value, Untag(variant)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Untag<A> {
    type Error = A::Error;

    #[inline]
    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Untag(seed))
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap(visitor))
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrap(visitor))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fmt::Debug;

    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};

    use crate::state::{StateFormat, restore, save};

    fn by_name<T: Serialize + DeserializeOwned>(value: &T) -> T {
        let bytes = save(value, StateFormat::SelfDescribing).unwrap();
        restore(&bytes, StateFormat::SelfDescribing).unwrap()
    }

    fn round_trips<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T) {
        assert_eq!(by_name(&value), value);
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Unit;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Wrapper(Option<u8>);

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Meters(f64);

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Slot {
        Empty,
        Held(Option<()>),
        Maybe { inner: Option<Option<u8>> },
        Pair(Option<Wrapper>, ()),
    }

    #[test]
    fn nested_options_keep_every_some() {
        round_trips(Some(None::<u8>));
        round_trips(Some(Some(None::<u8>)));
        round_trips(Some(Some(Some(7u8))));
        round_trips(None::<Option<u8>>);
        round_trips(Some(()));
        round_trips(Some(Some(())));
        round_trips(vec![Some(()), None, Some(())]);
        round_trips(Some(Wrapper(None)));
        round_trips(Some(Wrapper(Some(0))));
        round_trips(Some(Unit));
        round_trips(BTreeMap::from([(Some(()), 1u8), (None, 2)]));
        round_trips(BTreeMap::from([(1u8, Some(None::<String>)), (2, None)]));
    }

    #[test]
    fn options_inside_enums_and_structs() {
        round_trips(Slot::Empty);
        round_trips(Slot::Held(Some(())));
        round_trips(Slot::Held(None));
        round_trips(Slot::Maybe { inner: Some(None) });
        round_trips(Slot::Pair(Some(Wrapper(None)), ()));
        round_trips(vec![
            Slot::Maybe { inner: None },
            Slot::Maybe {
                inner: Some(Some(3)),
            },
        ]);
    }

    #[test]
    fn unit_newtype_and_wide_integers() {
        round_trips(Unit);
        round_trips(());
        round_trips(Wrapper(None));
        round_trips(Meters(2.5));
        round_trips((i128::MIN, i128::MAX, u128::MAX, 0u128));
        round_trips(('é', '\u{1f600}', '\0'));
        round_trips(String::from("grove \u{1f333}"));
    }

    #[test]
    fn floats_keep_their_bits() {
        let doubles = [
            f64::from_bits(0x7ff8_0000_dead_beef),
            f64::from_bits(0xfff0_0000_0000_0001),
            -0.0,
            f64::from_bits(1),
            f64::NEG_INFINITY,
        ];
        let singles = [
            f32::from_bits(0x7fc0_1234),
            f32::from_bits(0xff80_0001),
            -0.0,
        ];
        let (d, s) = by_name(&(doubles.to_vec(), singles.to_vec()));
        let bits64 = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let bits32 = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits64(&d), bits64(&doubles));
        assert_eq!(bits32(&s), bits32(&singles));
        let some_nan: Option<f64> = by_name(&Some(f64::from_bits(0x7ff0_0000_0000_0abc)));
        assert_eq!(some_nan.map(f64::to_bits), Some(0x7ff0_0000_0000_0abc));
    }

    #[test]
    fn bytes_round_trip() {
        struct Raw(Vec<u8>);
        impl Serialize for Raw {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for Raw {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = Raw;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Raw, E> {
                        Ok(Raw(v.to_vec()))
                    }
                }
                d.deserialize_byte_buf(V)
            }
        }
        let back: (Raw, Option<Raw>) = by_name(&(Raw(vec![0, 255, 7]), Some(Raw(vec![]))));
        assert_eq!(back.0.0, [0, 255, 7]);
        assert_eq!(back.1.map(|r| r.0), Some(vec![]));
        round_trips(vec![0u8, 1, 255]);
    }

    #[test]
    fn untagged_enums_are_ambiguous_as_documented() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        #[serde(untagged)]
        enum Count {
            Wide(u64),
            Narrow(u8),
        }
        assert_eq!(by_name(&Count::Narrow(3)), Count::Wide(3));
    }

    #[test]
    fn a_field_made_optional_keeps_its_value() {
        #[derive(Serialize)]
        struct Before {
            hp: u32,
            name: String,
        }
        #[derive(Deserialize, Debug, PartialEq)]
        struct After {
            hp: Option<u32>,
            name: Option<String>,
        }
        let bytes = save(
            &Before {
                hp: 5,
                name: "x".into(),
            },
            StateFormat::SelfDescribing,
        )
        .unwrap();
        let after: After = crate::state::load(&bytes, StateFormat::SelfDescribing).unwrap();
        assert_eq!(
            after,
            After {
                hp: Some(5),
                name: Some("x".into())
            }
        );
    }
}
