//! The shape of a state type, traced from its `Deserialize` impl, for the schema
//! fingerprint.
//!
//! The tracer plays the part of the positional decoder (`positional.rs`): it answers every
//! request a `Deserialize` impl makes with the same calls the decoder would make (a struct
//! is a sequence of `fields.len()` elements, a variant is a `u32` index) and a sample
//! value, and writes down what was asked for. The positional bytes of two versions line up
//! exactly when the two tracings asked for the same things, so a hash of this description
//! is the fingerprint.
//!
//! An enum shows one variant per run of `Deserialize`, so the type is deserialized again
//! and again until every variant of every enum reachable from it has been seen, nested
//! enums included: each run takes the next unseen variant of each enum it meets, and an
//! enum whose variants are all known steers towards the variant under which an unfinished
//! enum was found. How many variants an enum has is learnt by asking for the next index
//! until the type refuses it (serde's variant lists also hold aliases). Recursive types
//! end: a type met again inside itself gets empty sequences, `None` and a variant that is
//! not already being built.
//!
//! Named types are told apart by their Rust type, not only their name, so two `Inner`s
//! from different modules are two entries.

use std::any::TypeId;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

/// Why a type's shape could not be traced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TraceError {
    /// The type's `Deserialize` failed on the tracer's sample values.
    Rejected(String),
    /// The type needs a self-describing format (`deserialize_any` and the like), which
    /// the positional format is not.
    SelfDescribing(&'static str),
    /// Types nested deeper than [`MAX_DEPTH`]: a type that cannot be built finitely.
    TooDeep,
    /// Some enum still had unseen variants after a run that found nothing new.
    Incomplete {
        /// Runs of `Deserialize` made.
        runs: usize,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Rejected(message) => {
                write!(f, "the type rejected a sample value: {message}")
            }
            TraceError::SelfDescribing(what) => {
                write!(f, "the type needs a self-describing format ({what})")
            }
            TraceError::TooDeep => write!(f, "types nested deeper than {MAX_DEPTH}"),
            TraceError::Incomplete { runs } => {
                write!(f, "enum variants still unseen after {runs} runs")
            }
        }
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TraceError::Rejected(msg.to_string())
    }
}

/// Named types nested deeper than this end the trace.
const MAX_DEPTH: usize = 256;

/// Runs of `Deserialize` before giving up (each finds at least one new variant).
const MAX_RUNS: usize = 4096;

/// The description of `T`'s positional shape: the root's, then every named type's in the
/// order first met.
pub(crate) fn trace<T: DeserializeOwned>() -> Result<Vec<u8>, TraceError> {
    Ok(Tracer::run::<T>()?.description())
}

impl Tracer {
    /// Deserializes `T` until every enum met has shown every variant.
    fn run<T: DeserializeOwned>() -> Result<Tracer, TraceError> {
        let mut tracer = Tracer::default();
        for run in 1..=MAX_RUNS {
            tracer.progress = false;
            tracer.probe_failed = false;
            tracer.stack.clear();
            tracer.root_mode = if tracer.root_done {
                Mode::Explore
            } else {
                tracer.root.clear();
                Mode::Record
            };
            match T::deserialize(&mut tracer) {
                Ok(value) => {
                    drop(value);
                    tracer.root_done = true;
                }
                // Asking for an enum's next variant index found its end: that is news.
                Err(_) if tracer.probe_failed => {}
                Err(e) => return Err(e),
            }
            if tracer.root_done && tracer.complete() {
                return Ok(tracer);
            }
            if !tracer.progress {
                return Err(TraceError::Incomplete { runs: run });
            }
        }
        Err(TraceError::Incomplete { runs: MAX_RUNS })
    }
}

/// How a named type being built answers requests for sequences, maps and options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    /// First time through: one element, `Some`, and what is asked for is written down.
    #[default]
    Record,
    /// Known already: one element and `Some` (to reach enums inside), nothing written.
    Explore,
    /// Met again inside itself: empty and `None`, so that the recursion ends.
    Minimal,
}

/// A named type: struct, tuple struct, newtype struct or enum.
#[derive(Debug)]
struct Named {
    /// Its kind, name, and field or variant names.
    header: Vec<u8>,
    /// What its body asked for (not enums), once recorded.
    body: Option<Vec<u8>>,
    /// Enums: what each variant asked for, by index, once recorded.
    variants: Vec<Option<Vec<u8>>>,
    /// Enums: how many names serde lists (variants and aliases), an upper bound.
    listed: u32,
    /// Enums: how many variants, once known.
    count: Option<u32>,
    /// Enums: the named types met under each variant.
    reach: Vec<BTreeSet<usize>>,
    is_enum: bool,
}

impl Named {
    /// The number of variant indices worth asking for.
    fn limit(&self) -> u32 {
        self.count.unwrap_or(self.listed)
    }

    fn incomplete(&self) -> bool {
        self.is_enum
            && (0..self.limit()).any(|i| self.variants.get(i as usize).is_none_or(Option::is_none))
    }

    fn recorded(&self, index: u32) -> bool {
        self.variants
            .get(index as usize)
            .is_some_and(Option::is_some)
    }
}

/// A named type being built.
#[derive(Debug)]
struct Frame {
    named: usize,
    /// Enums: the variant being built.
    variant: Option<u32>,
    mode: Mode,
    /// What is asked for, in [`Mode::Record`].
    recorded: Vec<u8>,
}

#[derive(Debug, Default)]
struct Tracer {
    named: Vec<Named>,
    ids: HashMap<(TypeId, &'static str), usize>,
    stack: Vec<Frame>,
    root: Vec<u8>,
    root_mode: Mode,
    root_done: bool,
    /// This run found something new.
    progress: bool,
    /// This run failed by asking for a variant index past an enum's end.
    probe_failed: bool,
    /// The enum and index being asked for, when that index may not exist.
    probing: Option<(usize, u32)>,
}

/// Tags of the description.
mod tag {
    pub const BOOL: u8 = 1;
    pub const I8: u8 = 2;
    pub const I16: u8 = 3;
    pub const I32: u8 = 4;
    pub const I64: u8 = 5;
    pub const I128: u8 = 6;
    pub const U8: u8 = 7;
    pub const U16: u8 = 8;
    pub const U32: u8 = 9;
    pub const U64: u8 = 10;
    pub const U128: u8 = 11;
    pub const F32: u8 = 12;
    pub const F64: u8 = 13;
    pub const CHAR: u8 = 14;
    pub const STR: u8 = 15;
    pub const BYTES: u8 = 16;
    pub const OPTION: u8 = 17;
    pub const UNIT: u8 = 18;
    pub const UNIT_STRUCT: u8 = 19;
    pub const SEQ: u8 = 20;
    pub const TUPLE: u8 = 21;
    pub const MAP: u8 = 22;
    pub const NAMED: u8 = 23;
    pub const STRUCT: u8 = 24;
    pub const TUPLE_STRUCT: u8 = 25;
    pub const NEWTYPE_STRUCT: u8 = 26;
    pub const ENUM: u8 = 27;
    pub const UNIT_VARIANT: u8 = 28;
    pub const NEWTYPE_VARIANT: u8 = 29;
    pub const TUPLE_VARIANT: u8 = 30;
    pub const STRUCT_VARIANT: u8 = 31;
    pub const READ: u8 = 32;
    pub const VARIANT: u8 = 33;
    pub const MISSING: u8 = 34;
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn header(kind: u8, name: &str, names: &[&str], len: usize) -> Vec<u8> {
    let mut out = vec![kind];
    put_str(&mut out, name);
    put_u32(&mut out, len);
    put_u32(&mut out, names.len());
    for n in names {
        put_str(&mut out, n);
    }
    out
}

impl Tracer {
    fn mode(&self) -> Mode {
        self.stack.last().map_or(self.root_mode, |f| f.mode)
    }

    /// Writes `bytes` into the description of what is being recorded, if anything is.
    fn emit(&mut self, bytes: &[u8]) {
        match self.stack.last_mut() {
            Some(frame) if frame.mode == Mode::Record => frame.recorded.extend_from_slice(bytes),
            Some(_) => {}
            None if self.root_mode == Mode::Record => self.root.extend_from_slice(bytes),
            None => {}
        }
    }

    /// Meets the named type whose visitor builds `V`: its id, and whether it is already
    /// being built further up.
    fn meet<V>(
        &mut self,
        name: &'static str,
        header: impl FnOnce() -> Vec<u8>,
    ) -> Result<(usize, bool), TraceError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(TraceError::TooDeep);
        }
        let key = (typeid::of::<V>(), name);
        let id = match self.ids.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.named.len();
                self.named.push(Named {
                    header: header(),
                    body: None,
                    variants: Vec::new(),
                    listed: 0,
                    count: None,
                    reach: Vec::new(),
                    is_enum: false,
                });
                self.ids.insert(key, id);
                self.progress = true;
                id
            }
        };
        let mut reference = vec![tag::NAMED];
        put_u32(&mut reference, id);
        self.emit(&reference);
        for frame in &self.stack {
            if let Some(v) = frame.variant {
                let reach = &mut self.named[frame.named].reach;
                if reach.len() <= v as usize {
                    reach.resize_with(v as usize + 1, BTreeSet::new);
                }
                reach[v as usize].insert(id);
            }
        }
        let nested = self.stack.iter().any(|f| f.named == id);
        Ok((id, nested))
    }

    /// Builds the body of the non-enum named type `id` with `build`.
    fn body<R>(
        &mut self,
        id: usize,
        nested: bool,
        build: impl FnOnce(&mut Self) -> Result<R, TraceError>,
    ) -> Result<R, TraceError> {
        let mode = if nested {
            Mode::Minimal
        } else if self.named[id].body.is_none() {
            Mode::Record
        } else {
            Mode::Explore
        };
        self.stack.push(Frame {
            named: id,
            variant: None,
            mode,
            recorded: Vec::new(),
        });
        let result = build(self);
        let frame = self.stack.pop().expect("pushed above");
        if result.is_ok() && mode == Mode::Record {
            self.named[id].body = Some(frame.recorded);
            self.progress = true;
        }
        result
    }

    /// Whether every enum met has had every variant recorded.
    fn complete(&self) -> bool {
        !self.named.iter().any(Named::incomplete)
    }

    /// The variant of enum `id` to build this time, and how.
    fn choose(&self, id: usize, nested: bool) -> (u32, Mode) {
        let named = &self.named[id];
        let limit = named.limit();
        let building = |i: u32| {
            self.stack
                .iter()
                .any(|f| f.named == id && f.variant == Some(i))
        };
        if nested {
            // Something known to end, else anything not already being built.
            let pick = (0..limit)
                .find(|&i| named.recorded(i) && !building(i))
                .or_else(|| (0..limit).find(|&i| !building(i)))
                .unwrap_or(0);
            return (pick, Mode::Minimal);
        }
        if let Some(i) = (0..limit).find(|&i| !named.recorded(i)) {
            return (i, Mode::Record);
        }
        let unfinished: BTreeSet<usize> = self
            .named
            .iter()
            .enumerate()
            .filter(|(_, n)| n.incomplete())
            .map(|(i, _)| i)
            .collect();
        let towards = named
            .reach
            .iter()
            .position(|r| !r.is_disjoint(&unfinished))
            .map_or(0, |i| i as u32);
        (towards, Mode::Explore)
    }

    fn elements(&mut self, len: usize) -> usize {
        if self.mode() == Mode::Minimal { 0 } else { len }
    }
}

macro_rules! sample {
    ($($method:ident: $tag:ident => $visit:ident($value:expr)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
            self.emit(&[tag::$tag]);
            visitor.$visit($value)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Tracer {
    type Error = TraceError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(TraceError::SelfDescribing("deserialize_any"))
    }

    // Integers are sampled as 1, which `NonZero*` accepts.
    sample!(
        deserialize_bool: BOOL => visit_bool(false),
        deserialize_i8: I8 => visit_i8(1), deserialize_i16: I16 => visit_i16(1),
        deserialize_i32: I32 => visit_i32(1), deserialize_i64: I64 => visit_i64(1),
        deserialize_i128: I128 => visit_i128(1), deserialize_u8: U8 => visit_u8(1),
        deserialize_u16: U16 => visit_u16(1), deserialize_u32: U32 => visit_u32(1),
        deserialize_u64: U64 => visit_u64(1), deserialize_u128: U128 => visit_u128(1),
        deserialize_f32: F32 => visit_f32(1.0), deserialize_f64: F64 => visit_f64(1.0),
        deserialize_char: CHAR => visit_char('a'),
        deserialize_str: STR => visit_str(""), deserialize_string: STR => visit_string(String::new()),
        deserialize_bytes: BYTES => visit_bytes(&[]), deserialize_byte_buf: BYTES => visit_byte_buf(Vec::new()),
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.emit(&[tag::OPTION]);
        if self.mode() == Mode::Minimal {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.emit(&[tag::UNIT]);
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut out = vec![tag::UNIT_STRUCT];
        put_str(&mut out, name);
        self.emit(&out);
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let (id, nested) =
            self.meet::<V::Value>(name, || header(tag::NEWTYPE_STRUCT, name, &[], 1))?;
        self.body(id, nested, |t| visitor.visit_newtype_struct(t))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.emit(&[tag::SEQ]);
        let left = self.elements(1);
        visitor.visit_seq(Elements { tracer: self, left })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut out = vec![tag::TUPLE];
        put_u32(&mut out, len);
        self.emit(&out);
        read(self, len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let (id, nested) =
            self.meet::<V::Value>(name, || header(tag::TUPLE_STRUCT, name, &[], len))?;
        self.body(id, nested, |t| read(t, len, visitor))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.emit(&[tag::MAP]);
        let left = self.elements(1);
        visitor.visit_map(Elements { tracer: self, left })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let (id, nested) =
            self.meet::<V::Value>(name, || header(tag::STRUCT, name, fields, fields.len()))?;
        self.body(id, nested, |t| read(t, fields.len(), visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let (id, nested) =
            self.meet::<V::Value>(name, || header(tag::ENUM, name, variants, variants.len()))?;
        {
            let named = &mut self.named[id];
            named.is_enum = true;
            named.listed = variants.len() as u32;
        }
        if self.named[id].limit() == 0 {
            return Err(TraceError::Rejected(format!(
                "enum `{name}` has no variants"
            )));
        }
        let (index, mode) = self.choose(id, nested);
        self.probing = (!self.named[id].recorded(index) && self.named[id].count.is_none())
            .then_some((id, index));
        self.stack.push(Frame {
            named: id,
            variant: Some(index),
            mode,
            recorded: Vec::new(),
        });
        let result = visitor.visit_enum(Variant {
            tracer: &mut *self,
            index,
        });
        let frame = self.stack.pop().expect("pushed above");
        if result.is_ok() && mode == Mode::Record {
            let named = &mut self.named[id];
            if named.variants.len() <= index as usize {
                named.variants.resize(index as usize + 1, None);
            }
            named.variants[index as usize] = Some(frame.recorded);
            self.progress = true;
        }
        result
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(TraceError::SelfDescribing("deserialize_identifier"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(TraceError::SelfDescribing("deserialize_ignored_any"))
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// `len` elements through `visit_seq`, as the positional decoder reads tuples and structs,
/// then how many the visitor actually read (fewer, when serde lists aliases).
fn read<'de, V: Visitor<'de>>(
    tracer: &mut Tracer,
    len: usize,
    visitor: V,
) -> Result<V::Value, TraceError> {
    let mut elements = Elements { tracer, left: len };
    let value = visitor.visit_seq(&mut elements)?;
    let read = len - elements.left;
    let mut out = vec![tag::READ];
    put_u32(&mut out, read);
    elements.tracer.emit(&out);
    Ok(value)
}

struct Elements<'t> {
    tracer: &'t mut Tracer,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_> {
    type Error = TraceError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TraceError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.tracer).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> de::MapAccess<'de> for Elements<'_> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TraceError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.tracer).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, TraceError> {
        seed.deserialize(&mut *self.tracer)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// One variant of an enum being traced.
struct Variant<'t> {
    tracer: &'t mut Tracer,
    index: u32,
}

impl<'de, 't> de::EnumAccess<'de> for Variant<'t> {
    type Error = TraceError;
    type Variant = &'t mut Tracer;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, &'t mut Tracer), TraceError> {
        let tracer = self.tracer;
        let probing = tracer.probing.take();
        match seed.deserialize(self.index.into_deserializer()) {
            Ok(value) => Ok((value, tracer)),
            Err(e) => {
                if let Some((id, index)) = probing {
                    // The type has no variant `index`: the enum has `index` variants.
                    tracer.named[id].count = Some(index);
                    tracer.progress = true;
                    tracer.probe_failed = true;
                }
                Err(e)
            }
        }
    }
}

impl<'de> de::VariantAccess<'de> for &mut Tracer {
    type Error = TraceError;

    fn unit_variant(self) -> Result<(), TraceError> {
        self.emit(&[tag::UNIT_VARIANT]);
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, TraceError> {
        self.emit(&[tag::NEWTYPE_VARIANT]);
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut out = vec![tag::TUPLE_VARIANT];
        put_u32(&mut out, len);
        self.emit(&out);
        read(self, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut out = vec![tag::STRUCT_VARIANT];
        put_u32(&mut out, fields.len());
        for field in fields {
            put_str(&mut out, field);
        }
        self.emit(&out);
        read(self, fields.len(), visitor)
    }
}

impl Tracer {
    /// The whole description: the root, then each named type by id.
    fn description(&self) -> Vec<u8> {
        let mut out = self.root.clone();
        for named in &self.named {
            out.extend_from_slice(&named.header);
            if named.is_enum {
                let count = named.limit();
                put_u32(&mut out, count as usize);
                for i in 0..count {
                    out.push(tag::VARIANT);
                    match named.variants.get(i as usize).and_then(Option::as_ref) {
                        Some(body) => out.extend_from_slice(body),
                        None => out.push(tag::MISSING),
                    }
                }
            } else if let Some(body) = &named.body {
                out.extend_from_slice(body);
            } else {
                out.push(tag::MISSING);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Mood {
        Calm,
        Angry(u8),
        Scared { of: String },
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Order {
        Idle,
        Walk(Vec<(f32, f32)>),
        Feel(Mood),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Unit {
        order: Order,
        last: Option<Order>,
    }

    /// The variant bodies recorded for the enum named `name`.
    fn variants_of(tracer: &Tracer, name: &str) -> Vec<Option<Vec<u8>>> {
        let id = tracer
            .ids
            .iter()
            .find(|((_, n), _)| *n == name)
            .map(|(_, &id)| id)
            .unwrap_or_else(|| panic!("{name} met"));
        tracer.named[id].variants.clone()
    }

    fn traced<T: DeserializeOwned>() -> Tracer {
        Tracer::run::<T>().unwrap()
    }

    #[test]
    fn every_variant_of_nested_enums_is_seen() {
        let tracer = traced::<Unit>();
        assert!(tracer.complete());
        let order = variants_of(&tracer, "Order");
        let mood = variants_of(&tracer, "Mood");
        assert_eq!(order.len(), 3);
        assert_eq!(mood.len(), 3);
        assert!(order.iter().chain(&mood).all(Option::is_some));
    }

    #[test]
    fn aliases_and_skipped_variants_are_traced() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        enum Step {
            #[serde(alias = "Stroll")]
            Walk,
            #[serde(skip)]
            Teleport,
            Run(u32),
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct S {
            #[serde(alias = "old_step")]
            step: Step,
            #[serde(alias = "n")]
            count: u64,
        }
        let tracer = traced::<S>();
        let id = tracer
            .ids
            .iter()
            .find(|((_, n), _)| *n == "Step")
            .unwrap()
            .1;
        assert_eq!(tracer.named[*id].count, Some(2), "Walk and Run");
    }

    #[test]
    fn recursive_types_end() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        enum Tree {
            Node(Box<Tree>, Box<Tree>),
            Leaf(u8),
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Dir {
            children: Vec<Dir>,
            parent: Option<Box<Dir>>,
            tree: Tree,
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Wrapped(Vec<Wrapped>);
        trace::<Tree>().unwrap();
        trace::<Dir>().unwrap();
        trace::<Wrapped>().unwrap();
    }

    #[test]
    fn a_game_like_state_is_traced() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Game {
            units: HashMap<u32, Unit>,
            names: BTreeMap<String, Vec<Option<Mood>>>,
            id: std::num::NonZeroU32,
            tick: std::time::Duration,
        }
        trace::<Game>().unwrap();
    }

    #[test]
    fn a_change_in_a_nested_variant_changes_the_shape() {
        mod before {
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            pub enum Mood {
                Calm,
                Angry(u8),
            }
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            pub enum Order {
                Idle,
                Feel(Mood),
            }
        }
        mod after {
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            pub enum Mood {
                Calm,
                Angry(u16),
            }
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            pub enum Order {
                Idle,
                Feel(Mood),
            }
        }
        assert_ne!(
            trace::<before::Order>().unwrap(),
            trace::<after::Order>().unwrap()
        );
        assert_eq!(
            trace::<before::Order>().unwrap(),
            trace::<before::Order>().unwrap()
        );
    }

    #[test]
    fn types_that_need_a_self_describing_format_are_refused() {
        #[derive(Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        enum Either {
            A(u8),
            B(String),
        }
        assert_eq!(
            trace::<Either>().unwrap_err(),
            TraceError::SelfDescribing("deserialize_any")
        );
    }
}
