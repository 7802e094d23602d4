//! Saving and restoring a module's state across a reload.
//!
//! Two formats, chosen by the host from the schema fingerprints the two versions report:
//! - [`StateFormat::Positional`] (grove's own fixed-width format, `positional.rs`) when the
//!   fingerprints match: the fastest path, for the common case of a logic-only change;
//! - [`StateFormat::SelfDescribing`] (MessagePack with field names, `by_name.rs`)
//!   otherwise: added fields take their default, removed fields are dropped, reordered
//!   fields still match, and a widened numeric type still reads the old value. It is
//!   lossless for serde's data model: nested options (`Some(None)`, `Some(())`), unit and
//!   newtype structs, `i128`/`u128`, chars, bytes, and floats to the bit (NaN payloads,
//!   `-0.0`) come back as they were saved.
//!
//! Candidates measured on a 1 MiB world (structs, `Vec<f32>`, strings), ser+de per MiB:
//! bincode 2 (fixed-width) 0.54 ms, postcard (varints) 0.87 ms, rmp-serde with names
//! 2.54 ms, serde_json 7.05 ms. bincode's maintained line has ended (3.0.0 is a tombstone),
//! and postcard's varints cost ~10x on full-width integers, so the positional format is a
//! small fixed-width one of our own. See BENCHMARKS.md.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::abi;
pub use crate::dynamic::Dynamic;
pub use crate::report::{
    AddedField, FieldReport, LossyValue, Migration, REPORT_LIMIT, RemovedField, RenamedField,
};

/// How a state is encoded for one reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateFormat {
    /// Fields in declaration order, no names: both versions must have the same schema.
    /// A decode is checked: encoded again, the value read must give back the bytes saved
    /// (map entries in any order, and, when that fails, sequence elements in any order, for
    /// a `HashSet`: such a state is decoded twice), else it is an error and the reload goes
    /// by name. So a
    /// type whose `Serialize` and `Deserialize` disagree (a `#[serde(skip)]` variant,
    /// which serde counts when writing a variant's index and not when reading it, a
    /// `skip_deserializing` field, a `serialize_with` of another shape) is never misread.
    Positional,
    /// Fields keyed by name: tolerates added, removed and reordered fields. Lossless for
    /// serde's data model, except where serde itself is ambiguous: an untagged enum (or a
    /// `#[serde(flatten)]` field) is read back as the first variant that fits.
    SelfDescribing,
}

impl StateFormat {
    /// The value that crosses the ABI.
    pub fn to_raw(self) -> u32 {
        match self {
            StateFormat::Positional => abi::STATE_FORMAT_POSITIONAL,
            StateFormat::SelfDescribing => abi::STATE_FORMAT_SELF_DESCRIBING,
        }
    }

    /// Reads the value that crossed the ABI.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            abi::STATE_FORMAT_POSITIONAL => Some(StateFormat::Positional),
            abi::STATE_FORMAT_SELF_DESCRIBING => Some(StateFormat::SelfDescribing),
            _ => None,
        }
    }

    /// The format for moving state from a version with fingerprint `old` to one with `new`.
    pub fn between(old: u64, new: u64) -> Self {
        if old == new && old != abi::SCHEMA_UNKNOWN {
            StateFormat::Positional
        } else {
            StateFormat::SelfDescribing
        }
    }
}

impl fmt::Display for StateFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateFormat::Positional => "positional",
            StateFormat::SelfDescribing => "self-describing",
        })
    }
}

/// A state that could not be saved or restored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// The value could not be encoded in `format`.
    Encode {
        /// The format asked for.
        format: StateFormat,
        /// Why, as the encoder said.
        message: String,
    },
    /// The bytes could not be decoded (or, positionally, were not exactly the value saved).
    Decode {
        /// The format asked for.
        format: StateFormat,
        /// Why, as the decoder said.
        message: String,
    },
    /// One field of a self-describing state could not be decoded.
    Field {
        /// The field's path from the state's root, as serde names it (`inner.count`).
        path: String,
        /// Why, as the decoder said.
        message: String,
    },
    /// A positional state was to be read by [`load`], which cannot check that the value
    /// read is the value saved: [`restore`] can.
    Unchecked,
    /// The host could not provide a buffer for the encoded state.
    NoBuffer {
        /// The format asked for.
        format: StateFormat,
        /// The state's encoded size.
        bytes: usize,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Encode { format, message } => {
                write!(f, "cannot encode state ({format}): {message}")
            }
            StateError::Decode { format, message } => {
                write!(f, "cannot decode state ({format}): {message}")
            }
            StateError::Field { path, message } => {
                write!(f, "cannot decode state field `{path}`: {message}")
            }
            StateError::NoBuffer { format, bytes } => write!(
                f,
                "the host could not allocate {bytes} bytes for the state ({format}): free memory \
                 or make the state smaller"
            ),
            StateError::Unchecked => f.write_str(
                "a positional state is only read by `restore`, which checks that it is the value saved",
            ),
        }
    }
}

impl std::error::Error for StateError {}

/// Encodes `value` in `format`.
pub fn save<T: Serialize>(value: &T, format: StateFormat) -> Result<Vec<u8>, StateError> {
    let encoded = match format {
        StateFormat::Positional => crate::positional::to_vec(value).map_err(|e| e.to_string()),
        StateFormat::SelfDescribing => crate::by_name::to_vec(value).map_err(|e| e.to_string()),
    };
    encoded.map_err(|message| StateError::Encode { format, message })
}

/// Encodes `value` in `format` into the buffer `buffer` hands out for its exact size (or
/// `None` when it cannot). The positional format is counted, then written in place: no
/// buffer of its own, no copy (a reload saves this way into the host's memory). The
/// self-describing one is encoded, then copied.
pub fn save_into<'b, T: Serialize>(
    value: &T,
    format: StateFormat,
    buffer: impl FnOnce(usize) -> Option<&'b mut [u8]>,
) -> Result<(), StateError> {
    let encode = |message: String| StateError::Encode { format, message };
    match format {
        StateFormat::Positional => {
            let bytes = crate::positional::encoded_len(value).map_err(|e| encode(e.to_string()))?;
            let out = buffer(bytes).ok_or(StateError::NoBuffer { format, bytes })?;
            crate::positional::write_into(value, out).map_err(|e| encode(e.to_string()))
        }
        StateFormat::SelfDescribing => {
            let encoded = crate::by_name::to_vec(value).map_err(|e| encode(e.to_string()))?;
            let bytes = encoded.len();
            let out = buffer(bytes).ok_or(StateError::NoBuffer { format, bytes })?;
            out.copy_from_slice(&encoded);
            Ok(())
        }
    }
}

/// Decodes a `T` saved by [`save`] in `format`, and, for the positional format, checks that
/// it is exactly the value saved (see [`StateFormat::Positional`]).
pub fn restore<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    format: StateFormat,
) -> Result<T, StateError> {
    match format {
        StateFormat::Positional => {
            crate::positional::from_slice(bytes).map_err(|e| StateError::Decode {
                format,
                message: e.to_string(),
            })
        }
        StateFormat::SelfDescribing => load(bytes, format),
    }
}

/// Decodes a `T` from a self-describing state: `T` may be another type than the one saved,
/// holding only the fields it needs. A positional state is refused
/// ([`StateError::Unchecked`]): read it with [`restore`].
pub fn load<T: DeserializeOwned>(bytes: &[u8], format: StateFormat) -> Result<T, StateError> {
    if format == StateFormat::Positional {
        return Err(StateError::Unchecked);
    }
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    serde_path_to_error::deserialize(crate::by_name::Untag(&mut de)).map_err(|e| {
        let path = e.path().to_string();
        let mut message = e.into_inner().to_string();
        if message.starts_with("missing field") {
            message.push_str(
                ": a type nested in a state takes a field it gains from its `Default` when it is \
                 marked `#[grove::state]` (or the field `#[serde(default)]`)",
            );
        }
        if path == "." || path.is_empty() {
            StateError::Decode { format, message }
        } else {
            StateError::Field { path, message }
        }
    })
}

/// A hash of the full serde shape of `T`, nested types and every variant of every enum
/// included (see `schema.rs`), and of the positional format's version (so that two SDKs
/// with different layouts never read each other's bytes positionally), or
/// [`SCHEMA_UNKNOWN`](abi::SCHEMA_UNKNOWN) when it cannot be traced (a type that needs a
/// self-describing format, or whose `Deserialize` rejects the tracer's sample values).
/// Unknown schemas always take the self-describing path, so an untraceable type is slower
/// to reload, never wrong.
pub fn fingerprint<T: DeserializeOwned>() -> u64 {
    fingerprint_for_format::<T>(crate::positional::FORMAT_VERSION)
}

/// [`fingerprint`] for the positional format's version `version`.
fn fingerprint_for_format<T: DeserializeOwned>(version: u32) -> u64 {
    let shape = match crate::schema::trace::<T>() {
        Ok(shape) => shape,
        Err(error) => {
            tracing::debug!(
                state = std::any::type_name::<T>(),
                %error,
                "state schema not traced; reloads take the self-describing path"
            );
            return abi::SCHEMA_UNKNOWN;
        }
    };
    let mut bytes = version.to_le_bytes().to_vec();
    bytes.extend_from_slice(&shape);
    match fnv1a64(&bytes) {
        abi::SCHEMA_UNKNOWN => 1,
        hash => hash,
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike `std`'s hashers.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
    #[serde(default)]
    struct V1 {
        count: u64,
        name: String,
        inner: Inner,
    }

    #[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
    #[serde(default)]
    struct Inner {
        x: u32,
    }

    #[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
    #[serde(default)]
    struct V2Reordered {
        inner: Inner,
        added: Vec<u8>,
        count: u64,
    }

    mod nested_changed {
        use serde::{Deserialize, Serialize};

        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        pub struct V1 {
            pub count: u64,
            pub name: String,
            pub inner: Inner,
        }

        #[derive(Serialize, Deserialize, Default)]
        pub struct Inner {
            pub x: u64,
        }
    }

    #[derive(Serialize, Deserialize, Default, Debug)]
    #[serde(default)]
    struct Incompatible {
        count: String,
    }

    #[test]
    fn positional_round_trip() {
        let v = V1 {
            count: 7,
            name: "n".into(),
            inner: Inner { x: 3 },
        };
        let bytes = save(&v, StateFormat::Positional).unwrap();
        assert_eq!(restore::<V1>(&bytes, StateFormat::Positional).unwrap(), v);
    }

    #[test]
    fn saving_into_a_buffer_writes_exactly_what_save_returns() {
        let v = V1 {
            count: u64::MAX,
            name: "in place".into(),
            inner: Inner { x: 9 },
        };
        for format in [StateFormat::Positional, StateFormat::SelfDescribing] {
            let expected = save(&v, format).unwrap();
            let mut asked = Vec::new();
            let mut buffer = Vec::new();
            save_into(&v, format, |len| {
                asked.push(len);
                buffer = vec![0xAA; len];
                Some(&mut buffer[..])
            })
            .unwrap();
            assert_eq!(
                asked,
                [expected.len()],
                "{format}: one buffer, of the exact size"
            );
            assert_eq!(buffer, expected, "{format}");
            assert_eq!(restore::<V1>(&buffer, format).unwrap(), v, "{format}");
        }
    }

    #[test]
    fn a_buffer_the_host_cannot_give_is_an_error_naming_the_size() {
        let v = V1::default();
        let bytes = save(&v, StateFormat::Positional).unwrap().len();
        let err = save_into(&v, StateFormat::Positional, |_| None).unwrap_err();
        assert_eq!(
            err,
            StateError::NoBuffer {
                format: StateFormat::Positional,
                bytes
            }
        );
        assert!(
            err.to_string()
                .contains(&format!("could not allocate {bytes} bytes")),
            "{err}"
        );
    }

    #[test]
    fn self_describing_tolerates_reorder_add_remove() {
        let v = V1 {
            count: 7,
            name: "dropped".into(),
            inner: Inner { x: 3 },
        };
        let bytes = save(&v, StateFormat::SelfDescribing).unwrap();
        let v2: V2Reordered = load(&bytes, StateFormat::SelfDescribing).unwrap();
        assert_eq!(
            v2,
            V2Reordered {
                inner: Inner { x: 3 },
                added: vec![],
                count: 7
            }
        );
    }

    #[test]
    fn decode_error_names_the_field() {
        let bytes = save(&V1::default(), StateFormat::SelfDescribing).unwrap();
        let err = load::<Incompatible>(&bytes, StateFormat::SelfDescribing).unwrap_err();
        assert!(err.to_string().contains("`count`"), "{err}");
    }

    #[test]
    fn a_missing_nested_field_suggests_grove_state() {
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct Old {
            inner: OldInner,
        }
        #[derive(Serialize, Deserialize, Default)]
        struct OldInner {
            x: u32,
        }
        #[derive(Deserialize, Debug, Default)]
        #[serde(default)]
        #[allow(dead_code)]
        struct New {
            inner: NewInner,
        }
        #[derive(Deserialize, Debug, Default)]
        #[allow(dead_code)]
        struct NewInner {
            x: u32,
            added: u8,
        }
        let bytes = save(&Old::default(), StateFormat::SelfDescribing).unwrap();
        let err = load::<New>(&bytes, StateFormat::SelfDescribing).unwrap_err();
        assert!(
            matches!(&err, StateError::Field { path, .. } if path == "inner"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("missing field `added`"), "{text}");
        assert!(text.contains("#[grove::state]"), "{text}");
    }

    #[test]
    fn fingerprint_sees_nested_types() {
        let a = fingerprint::<V1>();
        assert_ne!(a, abi::SCHEMA_UNKNOWN);
        assert_eq!(a, fingerprint::<V1>(), "stable");
        // Same tokens at the top level, a nested field's type changed.
        assert_ne!(a, fingerprint::<nested_changed::V1>());
        assert_ne!(a, fingerprint::<V2Reordered>());
    }

    #[test]
    fn the_positional_format_version_is_part_of_the_fingerprint() {
        // Two SDKs whose positional layouts differ never read each other's bytes
        // positionally, even for the same type.
        let current = crate::positional::FORMAT_VERSION;
        assert_eq!(fingerprint::<V1>(), fingerprint_for_format::<V1>(current));
        assert_ne!(
            fingerprint_for_format::<V1>(current),
            fingerprint_for_format::<V1>(current + 1)
        );
    }

    #[test]
    fn a_state_with_nested_enums_has_a_fingerprint() {
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct Game {
            units: Vec<Unit>,
            mode: Mode,
        }
        #[derive(Serialize, Deserialize, Default)]
        enum Mode {
            #[default]
            Menu,
            Playing {
                level: u32,
            },
        }
        #[derive(Serialize, Deserialize)]
        enum Unit {
            Idle,
            Moving(Order),
        }
        #[derive(Serialize, Deserialize)]
        enum Order {
            Walk,
            #[serde(alias = "Sprint")]
            Run(f32),
        }
        assert_ne!(fingerprint::<Game>(), abi::SCHEMA_UNKNOWN);
    }

    /// What a reload between two same-schema versions does: positional, and by field name
    /// when that fails. Returns the value restored and the format that restored it.
    fn carried<T: Serialize + DeserializeOwned>(value: &T) -> (T, StateFormat) {
        let positional = save(value, StateFormat::Positional)
            .and_then(|bytes| restore::<T>(&bytes, StateFormat::Positional));
        match positional {
            Ok(back) => (back, StateFormat::Positional),
            Err(_) => {
                let bytes = save(value, StateFormat::SelfDescribing).unwrap();
                let back = restore(&bytes, StateFormat::SelfDescribing).unwrap();
                (back, StateFormat::SelfDescribing)
            }
        }
    }

    #[test]
    fn a_skipped_variant_does_not_shift_the_others() {
        // serde writes Walk's index counting the skipped variant (1) and reads index 1 as
        // the second variant it can read, Run.
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        enum Gait {
            #[serde(skip)]
            #[allow(dead_code)]
            Crawl,
            Walk,
            Run,
        }
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Legs {
            gait: Gait,
            speed: u8,
        }
        let bytes = save(&Gait::Walk, StateFormat::Positional).unwrap();
        let err = restore::<Gait>(&bytes, StateFormat::Positional).unwrap_err();
        assert!(matches!(err, StateError::Decode { .. }), "{err}");
        let legs = Legs {
            gait: Gait::Walk,
            speed: 3,
        };
        assert_eq!(carried(&legs), (legs, StateFormat::SelfDescribing));
        // The variant before any skipped one has the same index both ways: positional.
        let run_first = Legs {
            gait: Gait::Run,
            speed: 4,
        };
        let (back, _) = carried(&run_first);
        assert_eq!(back, run_first);
    }

    #[test]
    fn a_field_skipped_when_reading_does_not_shift_the_next_ones() {
        #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
        struct Inner {
            a: u64,
            #[serde(skip_deserializing)]
            cache: u64,
            b: u64,
        }
        #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
        struct Outer {
            inner: Inner,
            tail: Vec<u64>,
        }
        // Read one field short, these bytes decode without error as
        // `{ a: 1, b: 2, tail: [2, 5, 6] }`: every value after `cache` moves up a field.
        let value = Outer {
            inner: Inner {
                a: 1,
                cache: 2,
                b: 3,
            },
            tail: vec![5, 6],
        };
        let bytes = save(&value, StateFormat::Positional).unwrap();
        let err = restore::<Outer>(&bytes, StateFormat::Positional).unwrap_err();
        assert!(err.to_string().contains("disagree"), "{err}");
        // By name, the skipped field takes its default, as serde says; nothing else moves.
        let expected = Outer {
            inner: Inner {
                a: 1,
                cache: 0,
                b: 3,
            },
            tail: vec![5, 6],
        };
        assert_eq!(carried(&value), (expected, StateFormat::SelfDescribing));
    }

    #[test]
    fn a_field_skipped_when_empty_goes_by_name_and_comes_back() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Target {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            locked: Option<u32>,
            hp: i16,
        }
        let empty = Target {
            locked: None,
            hp: -5,
        };
        assert!(save(&empty, StateFormat::Positional).is_err());
        assert_eq!(carried(&empty), (empty, StateFormat::SelfDescribing));
        let full = Target {
            locked: Some(9),
            hp: 7,
        };
        assert_eq!(carried(&full), (full, StateFormat::Positional));
    }

    #[test]
    fn serialize_with_writing_another_shape_is_caught() {
        // Written as an f32, read as a u32: the same four bytes, another value.
        fn as_f32<S: serde::Serializer>(x: &u32, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_f32(*x as f32)
        }
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Score {
            #[serde(serialize_with = "as_f32")]
            points: u32,
            level: u8,
        }
        let value = Score {
            points: 3,
            level: 2,
        };
        let bytes = save(&value, StateFormat::Positional).unwrap();
        let err = restore::<Score>(&bytes, StateFormat::Positional).unwrap_err();
        assert!(err.to_string().contains("disagree"), "{err}");
    }

    #[test]
    fn serialize_with_that_agrees_with_deserialize_with_stays_positional() {
        mod offset {
            pub fn serialize<S: serde::Serializer>(x: &u32, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u32(x.wrapping_add(1))
            }
            pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
                <u32 as serde::Deserialize>::deserialize(d).map(|x| x.wrapping_sub(1))
            }
        }
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Score {
            #[serde(with = "offset")]
            points: u32,
            level: u8,
        }
        let value = Score {
            points: u32::MAX,
            level: 2,
        };
        assert_eq!(carried(&value), (value, StateFormat::Positional));
    }

    #[test]
    fn hash_maps_come_back_positionally_in_any_order() {
        use std::collections::HashMap;
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct World {
            cells: HashMap<u32, HashMap<String, Vec<u8>>>,
            names: HashMap<String, Option<u64>>,
        }
        let value = World {
            cells: (0..200u32)
                .map(|i| {
                    let inner = (0..i % 7)
                        .map(|j| (format!("k{j}"), vec![j as u8; j as usize]))
                        .collect();
                    (i, inner)
                })
                .collect(),
            names: (0..50)
                .map(|i| (format!("n{i}"), (i % 2 == 0).then_some(i)))
                .collect(),
        };
        let (back, format) = carried(&value);
        assert_eq!(format, StateFormat::Positional);
        assert_eq!(back, value);
    }

    #[test]
    fn hash_sets_come_back_positionally_in_any_order() {
        use std::collections::{HashMap, HashSet};
        #[derive(Serialize, Deserialize, Debug, PartialEq, Eq, Hash)]
        enum Cell {
            Wall,
            Door { locked: bool },
            Floor(u16),
        }
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Map {
            seen: HashSet<(i32, i32)>,
            cells: HashSet<Cell>,
            rooms: Vec<HashSet<String>>,
            // A set in the value of a map, and a map in an element of a sequence.
            doors: HashMap<u8, HashSet<u32>>,
            layers: Vec<HashMap<String, u8>>,
        }
        let value = Map {
            seen: (0..300).map(|i| (i, -i)).collect(),
            cells: (0..50)
                .map(Cell::Floor)
                .chain([Cell::Wall, Cell::Door { locked: true }])
                .collect(),
            rooms: (0..5)
                .map(|r| (0..r * 3).map(|i| format!("r{r}-{i}")).collect())
                .collect(),
            doors: (0..20u8)
                .map(|d| (d, (0..u32::from(d)).collect()))
                .collect(),
            layers: (0..4)
                .map(|l| (0..10u8).map(|i| (format!("{l}/{i}"), i)).collect())
                .collect(),
        };
        assert_eq!(carried(&value), (value, StateFormat::Positional));
    }

    #[test]
    fn format_choice() {
        assert_eq!(StateFormat::between(5, 5), StateFormat::Positional);
        assert_eq!(StateFormat::between(5, 6), StateFormat::SelfDescribing);
        assert_eq!(
            StateFormat::between(abi::SCHEMA_UNKNOWN, abi::SCHEMA_UNKNOWN),
            StateFormat::SelfDescribing
        );
    }
}
