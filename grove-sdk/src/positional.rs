//! The positional state format: serde's data model written in declaration order, numbers
//! fixed-width little-endian, no names, no tags beyond what serde needs.
//!
//! It is only used between two versions whose schema fingerprints match, so it carries no
//! type information at all: that is what makes it fast (a `Vec<u64>` is a length and a
//! copy-speed run of 8-byte words). Anything it cannot represent faithfully (a field skipped
//! by `skip_serializing_if`, a type that needs `deserialize_any`) is an error, and the
//! reload falls back to the self-describing format instead of misreading the state.
//!
//! A decode is checked by encoding the value again and comparing with the input
//! ([`from_slice`]): the fingerprint says the two versions *ask* for the same things, the
//! check that what was asked for is what was written, for this value.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

/// Why a state could not be written or read positionally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionalError(String);

impl fmt::Display for PositionalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PositionalError {}

impl ser::Error for PositionalError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        PositionalError(msg.to_string())
    }
}

impl de::Error for PositionalError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        PositionalError(msg.to_string())
    }
}

pub(crate) type Result<T, E = PositionalError> = std::result::Result<T, E>;

/// The version of this format's byte layout. It is part of every schema fingerprint, so
/// two SDKs whose positional layouts differ never take each other's bytes positionally:
/// bump it with any change to how a value is written.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Encodes `value`, in a buffer of exactly its size: a first pass only counts the bytes.
///
/// Counting costs a walk of the value that writes nothing; growing the buffer instead
/// would copy it at every doubling, touch fresh pages each time and leave up to twice the
/// state allocated, which is most of a big state's save (16 MiB: 8.5 ms grown, see
/// BENCHMARKS.md).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut size = Size(0);
    value.serialize(&mut Writer { out: &mut size })?;
    let mut out = Vec::with_capacity(size.0);
    value.serialize(&mut Writer { out: &mut out })?;
    Ok(out)
}

/// The number of bytes [`to_vec`] would write for `value`: a walk that writes nothing.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize> {
    let mut size = Size(0);
    value.serialize(&mut Writer { out: &mut size })?;
    Ok(size.0)
}

/// Encodes `value` into `out`, which must be exactly [`encoded_len`] bytes: a state is
/// written straight into the host's buffer, with no buffer of the module's and no copy.
///
/// A `Serialize` that writes more bytes than it counted, or fewer, is an error (it may
/// differ from one call to the next: a positional state must not), and `out` is then left
/// partly written.
pub fn write_into<T: Serialize + ?Sized>(value: &T, out: &mut [u8]) -> Result<()> {
    let expected = out.len();
    let mut fill = Fill { out, at: 0 };
    value.serialize(&mut Writer { out: &mut fill })?;
    if fill.at != expected {
        return Err(PositionalError(format!(
            "the state wrote {} bytes after counting {expected}: its Serialize does not \
             write the same value twice",
            fill.at
        )));
    }
    Ok(())
}

/// A sink writing into a buffer sized in advance.
struct Fill<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Fill<'_> {
    #[cold]
    #[inline(never)]
    fn overflow(&self, wanted: usize) -> PositionalError {
        PositionalError(format!(
            "the state wrote more than the {} bytes it counted ({wanted} more at byte {}): its \
             Serialize does not write the same value twice",
            self.out.len(),
            self.at
        ))
    }
}

impl Sink for Fill<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        let end = self.at + bytes.len();
        match self.out.get_mut(self.at..end) {
            Some(slot) => {
                slot.copy_from_slice(bytes);
                self.at = end;
                Ok(())
            }
            None => Err(self.overflow(bytes.len())),
        }
    }

    fn len_slot(&mut self) -> Result<usize> {
        let at = self.at;
        self.put(&[0; 8])?;
        Ok(at)
    }

    fn fill_len(&mut self, at: usize, len: usize) -> Result<()> {
        self.out[at..at + 8].copy_from_slice(&(len as u64).to_le_bytes());
        Ok(())
    }
}

/// A sink that only counts the bytes written to it.
struct Size(usize);

impl Sink for Size {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.0 += bytes.len();
        Ok(())
    }

    fn len_slot(&mut self) -> Result<usize> {
        self.0 += 8;
        Ok(0)
    }

    fn fill_len(&mut self, _at: usize, _len: usize) -> Result<()> {
        Ok(())
    }
}

/// Encodes `value` at the end of `out`, reusing its allocation.
pub(crate) fn append<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    value.serialize(&mut Writer { out })
}

/// Decodes a `T` that must use all of `bytes`, and checks that it is exactly the value
/// that was saved: encoded again, it must give back `bytes`, map entries in any order (and,
/// when that fails, sequence elements in any order too: a `HashSet` is written as a
/// sequence in an order that changes from one instance to the next).
///
/// Without the check, a type whose `Serialize` and `Deserialize` disagree would be misread
/// silently: serde counts a `#[serde(skip)]` variant in the index it writes but not in the
/// one it reads, a `#[serde(skip_deserializing)]` field is written but not read, a
/// `serialize_with` may write another shape than its `deserialize_with` reads. With it, a
/// decode that succeeds is the saved value, and anything else is an error the reload
/// recovers from by taking the self-describing path.
pub fn from_slice<'de, T: de::Deserialize<'de> + Serialize>(bytes: &'de [u8]) -> Result<T> {
    let (value, reader) = decode::<T, false>(bytes)?;
    let Err(in_order) = check(&value, bytes, reader) else {
        return Ok(value);
    };
    // Perhaps a sequence whose order is not kept (a `HashSet`): read again, noting where
    // every sequence element is, and compare sequences as sets.
    let (value, reader) = decode::<T, true>(bytes)?;
    check(&value, bytes, reader).map_err(|_| in_order)?;
    Ok(value)
}

/// Decodes a `T` that must use all of `bytes`; the reader says where maps (and, with
/// `sequences`, sequences) and their elements are.
fn decode<'de, T: de::Deserialize<'de>, const SETS: bool>(
    bytes: &'de [u8],
) -> Result<(T, Reader<'de, SETS>)> {
    let mut reader = Reader {
        input: bytes,
        len: bytes.len(),
        maps: Vec::new(),
        map_at: HashMap::new(),
        seqs: Spans::default(),
    };
    let value = T::deserialize(&mut reader)?;
    if !reader.input.is_empty() {
        return Err(PositionalError(format!(
            "{} bytes left over after the state",
            reader.input.len()
        )));
    }
    Ok((value, reader))
}

/// Encodes `value` against `bytes`, which `reader` decoded it from.
fn check<T: Serialize, const SETS: bool>(
    value: &T,
    bytes: &[u8],
    reader: Reader<'_, SETS>,
) -> Result<()> {
    let mut check = Check {
        expected: bytes,
        at: 0,
        maps: reader.maps,
        map_at: reader.map_at,
        open: Vec::new(),
        seqs: SETS.then_some(reader.seqs),
        open_seqs: Vec::new(),
        capturing: false,
        capture_depth: 0,
        key: Vec::new(),
    };
    value.serialize(&mut Writer { out: &mut check })?;
    if check.at != bytes.len() {
        return Err(check.mismatch());
    }
    Ok(())
}

/// Where the elements of each sequence read are, in the order met, and which sequence's
/// length is at an offset.
#[derive(Debug, Default)]
struct Spans {
    elements: Vec<Vec<std::ops::Range<usize>>>,
    at: HashMap<usize, usize>,
}

/// Where an encoder's bytes go.
trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<()>;
    /// Makes room for a length written later by [`Sink::fill_len`]; says where.
    fn len_slot(&mut self) -> Result<usize>;
    fn fill_len(&mut self, at: usize, len: usize) -> Result<()>;
    /// A map starts (before its length).
    fn map_start(&mut self) -> Result<()> {
        Ok(())
    }
    fn key_start(&mut self) {}
    fn key_end(&mut self) -> Result<()> {
        Ok(())
    }
    fn value_end(&mut self) -> Result<()> {
        Ok(())
    }
    fn map_end(&mut self) -> Result<()> {
        Ok(())
    }
    /// A sequence starts (before its length).
    fn seq_start(&mut self) -> Result<()> {
        Ok(())
    }
    fn seq_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()>
    where
        Self: Sized,
    {
        value.serialize(&mut Writer { out: self })
    }
    fn seq_end(&mut self) -> Result<()> {
        Ok(())
    }
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }

    fn len_slot(&mut self) -> Result<usize> {
        let at = self.len();
        self.extend_from_slice(&[0; 8]);
        Ok(at)
    }

    fn fill_len(&mut self, at: usize, len: usize) -> Result<()> {
        self[at..at + 8].copy_from_slice(&(len as u64).to_le_bytes());
        Ok(())
    }
}

/// The entries of a map as the decoder found them, by offset in the input.
#[derive(Debug, Clone)]
struct Entry {
    key: std::ops::Range<usize>,
    end: usize,
}

/// A sink that compares what is written with the bytes a value was decoded from.
struct Check<'a> {
    expected: &'a [u8],
    /// The next byte to compare.
    at: usize,
    /// The entries of each map the decoder read, in the order it met them.
    maps: Vec<Vec<Entry>>,
    /// The index in `maps` of the map whose length is at an offset.
    map_at: HashMap<usize, usize>,
    /// The maps being compared, innermost last.
    open: Vec<OpenMap<'a>>,
    /// Where sequence elements are, when sequences are compared as sets.
    seqs: Option<Spans>,
    /// The sequences being compared as sets, innermost last.
    open_seqs: Vec<OpenSeq<'a>>,
    /// A map key is being encoded into `key`, to be looked up among its map's entries.
    capturing: bool,
    /// Maps and keys opened inside the key being captured (their hooks do nothing).
    capture_depth: usize,
    key: Vec<u8>,
}

/// A quick hash for looking map keys up by their bytes (our own bytes: no adversary).
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type ByKey<'a> = HashMap<&'a [u8], usize, std::hash::BuildHasherDefault<KeyHasher>>;

/// A map being compared: its entries may come in another order than they were saved in
/// (a `HashMap`'s order changes from one instance to the next).
struct OpenMap<'a> {
    entries: Vec<Entry>,
    matched: Vec<bool>,
    /// Where the map ends in the input.
    end: usize,
    /// The entry expected next when the order is the saved one.
    next: usize,
    /// Where the value being compared must end.
    value_end: usize,
    /// Key bytes to entry, built at the first entry out of order.
    by_key: Option<ByKey<'a>>,
}

/// A sequence being compared as a set of elements.
struct OpenSeq<'a> {
    elements: Vec<std::ops::Range<usize>>,
    matched: Vec<bool>,
    end: usize,
    /// The element expected next when the order is the saved one.
    next: usize,
    /// Element bytes to elements, built at the first element out of order.
    by_bytes: Option<HashMap<&'a [u8], Vec<usize>, std::hash::BuildHasherDefault<KeyHasher>>>,
}

impl Check<'_> {
    /// Compares `value` with the saved bytes at `span`; on failure, leaves the check as it
    /// was.
    fn element_at<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
        span: &std::ops::Range<usize>,
    ) -> bool {
        let (at, maps, seqs) = (self.at, self.open.len(), self.open_seqs.len());
        self.at = span.start;
        let same = value.serialize(&mut Writer { out: &mut *self }).is_ok() && self.at == span.end;
        if !same {
            self.at = at;
            self.open.truncate(maps);
            self.open_seqs.truncate(seqs);
            self.capturing = false;
            self.capture_depth = 0;
        }
        same
    }

    fn mismatch(&self) -> PositionalError {
        PositionalError(format!(
            "the state read back does not encode to the bytes it was read from (byte {} of {}): \
             the type's Serialize and Deserialize disagree",
            self.at,
            self.expected.len()
        ))
    }
}

impl<'a> Sink for Check<'a> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        if self.capturing {
            self.key.extend_from_slice(bytes);
            return Ok(());
        }
        let end = self.at + bytes.len();
        if self.expected.get(self.at..end) != Some(bytes) {
            return Err(self.mismatch());
        }
        self.at = end;
        Ok(())
    }

    fn len_slot(&mut self) -> Result<usize> {
        if self.capturing {
            return self.key.len_slot();
        }
        let at = self.at;
        if self.expected.len() < at + 8 {
            return Err(self.mismatch());
        }
        self.at += 8;
        Ok(at)
    }

    fn fill_len(&mut self, at: usize, len: usize) -> Result<()> {
        if self.capturing {
            return self.key.fill_len(at, len);
        }
        if self.expected[at..at + 8] != (len as u64).to_le_bytes() {
            return Err(PositionalError(format!(
                "the state read back has another length at byte {at} than was saved"
            )));
        }
        Ok(())
    }

    fn map_start(&mut self) -> Result<()> {
        if self.capturing {
            self.capture_depth += 1;
            return Ok(());
        }
        let Some(&index) = self.map_at.get(&self.at) else {
            return Err(self.mismatch());
        };
        let entries = self.maps[index].clone();
        let end = entries.last().map_or(self.at + 8, |e| e.end);
        self.open.push(OpenMap {
            matched: vec![false; entries.len()],
            entries,
            end,
            next: 0,
            value_end: 0,
            by_key: None,
        });
        Ok(())
    }

    fn key_start(&mut self) {
        if self.capturing {
            self.capture_depth += 1;
        } else {
            self.capturing = true;
            self.key.clear();
        }
    }

    fn key_end(&mut self) -> Result<()> {
        if self.capture_depth > 0 {
            self.capture_depth -= 1;
            return Ok(());
        }
        self.capturing = false;
        let key = &self.key[..];
        let expected = self.expected;
        let Some(map) = self.open.last_mut() else {
            return Err(self.mismatch());
        };
        let in_order = map
            .entries
            .get(map.next)
            .filter(|e| expected[e.key.clone()] == key[..]);
        let index = match in_order {
            Some(_) => Some(map.next),
            None => map
                .by_key
                .get_or_insert_with(|| {
                    map.entries
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (&expected[e.key.clone()], i))
                        .collect()
                })
                .get(key)
                .copied(),
        };
        match index {
            Some(i) if !map.matched[i] => {
                map.matched[i] = true;
                map.next = i + 1;
                map.value_end = map.entries[i].end;
                self.at = map.entries[i].key.end;
                Ok(())
            }
            _ => Err(PositionalError(
                "the state read back has a map key that was not saved: the type's Serialize and Deserialize disagree".into(),
            )),
        }
    }

    fn value_end(&mut self) -> Result<()> {
        if self.capturing {
            return Ok(());
        }
        match self.open.last() {
            Some(map) if map.value_end == self.at => Ok(()),
            _ => Err(self.mismatch()),
        }
    }

    fn seq_start(&mut self) -> Result<()> {
        let Some(seqs) = &self.seqs else {
            return Ok(());
        };
        if self.capturing {
            self.capture_depth += 1;
            return Ok(());
        }
        let Some(&index) = seqs.at.get(&self.at) else {
            return Err(self.mismatch());
        };
        let elements = seqs.elements[index].clone();
        self.open_seqs.push(OpenSeq {
            matched: vec![false; elements.len()],
            end: elements.last().map_or(self.at + 8, |e| e.end),
            elements,
            next: 0,
            by_bytes: None,
        });
        Ok(())
    }

    fn seq_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        if self.seqs.is_none() || self.capturing {
            return value.serialize(&mut Writer { out: self });
        }
        let seq = self.open_seqs.last().expect("seq_start opened it");
        let next = seq.next;
        let in_order = seq
            .elements
            .get(next)
            .filter(|_| !seq.matched[next])
            .cloned();
        // In order, as a `Vec` is; else by its bytes; else (an element holding maps, whose
        // bytes depend on their order) against every element left.
        let found = match in_order {
            Some(span) if self.element_at(value, &span) => Some(next),
            _ => {
                let mut bytes = Vec::new();
                value.serialize(&mut Writer { out: &mut bytes })?;
                let expected = self.expected;
                let seq = self.open_seqs.last_mut().expect("seq_start opened it");
                let by_bytes = seq.by_bytes.get_or_insert_with(|| {
                    let mut by_bytes: HashMap<_, Vec<usize>, _> = HashMap::default();
                    for (i, e) in seq.elements.iter().enumerate() {
                        by_bytes.entry(&expected[e.clone()]).or_default().push(i);
                    }
                    by_bytes
                });
                let same_bytes = by_bytes
                    .get(&bytes[..])
                    .and_then(|candidates| candidates.iter().copied().find(|&i| !seq.matched[i]));
                match same_bytes {
                    Some(i) => Some(i),
                    None => {
                        let left: Vec<_> = (0..seq.elements.len())
                            .filter(|&i| !seq.matched[i])
                            .map(|i| (i, seq.elements[i].clone()))
                            .collect();
                        left.into_iter()
                            .find(|(_, span)| self.element_at(value, span))
                            .map(|(i, _)| i)
                    }
                }
            }
        };
        let Some(i) = found else {
            return Err(PositionalError(
                "the state read back has a sequence element that was not saved: the type's Serialize and Deserialize disagree".into(),
            ));
        };
        let seq = self.open_seqs.last_mut().expect("seq_start opened it");
        seq.matched[i] = true;
        seq.next = i + 1;
        Ok(())
    }

    fn seq_end(&mut self) -> Result<()> {
        if self.seqs.is_none() {
            return Ok(());
        }
        if self.capturing {
            self.capture_depth -= 1;
            return Ok(());
        }
        let seq = self.open_seqs.pop().expect("seq_start opened it");
        if seq.matched.iter().any(|m| !m) {
            return Err(PositionalError(
                "the state read back has fewer sequence elements than were saved".into(),
            ));
        }
        self.at = seq.end;
        Ok(())
    }

    fn map_end(&mut self) -> Result<()> {
        if self.capturing {
            self.capture_depth -= 1;
            return Ok(());
        }
        let map = self.open.pop().expect("map_start opened it");
        if map.matched.iter().any(|m| !m) {
            return Err(PositionalError(
                "the state read back has fewer map entries than were saved".into(),
            ));
        }
        self.at = map.end;
        Ok(())
    }
}

struct Writer<'a, S> {
    out: &'a mut S,
}

impl<'a, S: Sink> Writer<'a, S> {
    fn len(&mut self, len: usize) -> Result<()> {
        self.out.put(&(len as u64).to_le_bytes())
    }

    /// A sequence or map: its length now if known, else room for it.
    fn compound<'b>(&'b mut self, len: Option<usize>, map: bool) -> Result<Compound<'a, 'b, S>> {
        let len_at = match len {
            Some(len) => {
                self.len(len)?;
                None
            }
            None => Some(self.out.len_slot()?),
        };
        Ok(Compound {
            writer: self,
            len_at,
            count: 0,
            map,
        })
    }
}

/// A sequence or map being written; `len_at` is where its length goes when it was not
/// known up front.
struct Compound<'a, 'b, S> {
    writer: &'b mut Writer<'a, S>,
    len_at: Option<usize>,
    count: usize,
    map: bool,
}

impl<S: Sink> Compound<'_, '_, S> {
    fn finish(self) -> Result<()> {
        if let Some(at) = self.len_at {
            self.writer.out.fill_len(at, self.count)?;
        }
        if self.map {
            self.writer.out.map_end()
        } else {
            self.writer.out.seq_end()
        }
    }
}

macro_rules! write_le {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<()> {
            self.out.put(&v.to_le_bytes())
        }
    )*};
}

impl<'a, 'b, S: Sink> ser::Serializer for &'b mut Writer<'a, S> {
    type Ok = ();
    type Error = PositionalError;
    type SerializeSeq = Compound<'a, 'b, S>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Compound<'a, 'b, S>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    write_le!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_u128: u128, serialize_f32: f32, serialize_f64: f64,
    );

    fn serialize_u8(self, v: u8) -> Result<()> {
        self.out.put(&[v])
    }

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.put(&[u8::from(v)])
    }

    fn serialize_char(self, v: char) -> Result<()> {
        self.serialize_u32(u32::from(v))
    }

    fn serialize_str(self, v: &str) -> Result<()> {
        self.serialize_bytes(v.as_bytes())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.len(v.len())?;
        self.out.put(v)
    }

    fn serialize_none(self) -> Result<()> {
        self.out.put(&[0])
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        self.out.put(&[1])?;
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        Ok(())
    }

    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<()> {
        self.serialize_u32(index)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        self.serialize_u32(index)?;
        value.serialize(self)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, 'b, S>> {
        self.out.seq_start()?;
        self.compound(len, false)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self> {
        Ok(self)
    }

    fn serialize_tuple_struct(self, _: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self> {
        self.serialize_u32(index)?;
        Ok(self)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a, 'b, S>> {
        self.out.map_start()?;
        self.compound(len, true)
    }

    fn serialize_struct(self, _: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self> {
        self.serialize_u32(index)?;
        Ok(self)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

impl<S: Sink> ser::SerializeSeq for Compound<'_, '_, S> {
    type Ok = ();
    type Error = PositionalError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.count += 1;
        self.writer.out.seq_element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl<S: Sink> ser::SerializeMap for Compound<'_, '_, S> {
    type Ok = ();
    type Error = PositionalError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.count += 1;
        self.writer.out.key_start();
        key.serialize(&mut *self.writer)?;
        self.writer.out.key_end()
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.writer)?;
        self.writer.out.value_end()
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

macro_rules! fields_in_order {
    ($($trait:ident: $method:ident),* $(,)?) => {$(
        impl<S: Sink> ser::$trait for &mut Writer<'_, S> {
            type Ok = ();
            type Error = PositionalError;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<()> {
                Ok(())
            }
        }
    )*};
}

fields_in_order!(
    SerializeTuple: serialize_element,
    SerializeTupleStruct: serialize_field,
    SerializeTupleVariant: serialize_field,
);

macro_rules! named_fields_in_order {
    ($($trait:ident),* $(,)?) => {$(
        impl<S: Sink> ser::$trait for &mut Writer<'_, S> {
            type Ok = ();
            type Error = PositionalError;

            fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Result<()> {
                value.serialize(&mut **self)
            }

            fn skip_field(&mut self, key: &'static str) -> Result<()> {
                Err(PositionalError(format!(
                    "field `{key}` is skipped conditionally, which a positional state cannot express"
                )))
            }

            fn end(self) -> Result<()> {
                Ok(())
            }
        }
    )*};
}

named_fields_in_order!(SerializeStruct, SerializeStructVariant);

struct Reader<'de, const SETS: bool> {
    input: &'de [u8],
    /// The length of the whole input, for offsets.
    len: usize,
    /// The entries of each map read, in the order met (see [`Check`]).
    maps: Vec<Vec<Entry>>,
    /// The index in `maps` of the map whose length is at an offset.
    map_at: HashMap<usize, usize>,
    /// Where sequence elements are, with `SETS`.
    seqs: Spans,
}

impl<'de, const SETS: bool> Reader<'de, SETS> {
    /// Where the next byte is in the whole input.
    fn offset(&self) -> usize {
        self.len - self.input.len()
    }

    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        if self.input.len() < n {
            return Err(PositionalError(format!(
                "state ends early: {n} bytes wanted, {} left",
                self.input.len()
            )));
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn len(&mut self) -> Result<usize> {
        let len = u64::from_le_bytes(self.array()?);
        usize::try_from(len).map_err(|_| PositionalError(format!("length {len} is too large")))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&'de [u8]> {
        let len = self.len()?;
        self.take(len)
    }
}

macro_rules! read_le {
    ($($method:ident: $ty:ident => $visit:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit($ty::from_le_bytes(self.array()?))
        }
    )*};
}

impl<'de, const SETS: bool> de::Deserializer<'de> for &mut Reader<'de, SETS> {
    type Error = PositionalError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(PositionalError(
            "a type that needs a self-describing format (deserialize_any) cannot be read positionally".into(),
        ))
    }

    read_le!(
        deserialize_i8: i8 => visit_i8, deserialize_i16: i16 => visit_i16,
        deserialize_i32: i32 => visit_i32, deserialize_i64: i64 => visit_i64,
        deserialize_i128: i128 => visit_i128, deserialize_u8: u8 => visit_u8,
        deserialize_u16: u16 => visit_u16, deserialize_u32: u32 => visit_u32,
        deserialize_u64: u64 => visit_u64, deserialize_u128: u128 => visit_u128,
        deserialize_f32: f32 => visit_f32, deserialize_f64: f64 => visit_f64,
    );

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.take(1)?[0] {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            b => Err(PositionalError(format!("{b} is not a bool"))),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let code = self.u32()?;
        let c = char::from_u32(code)
            .ok_or_else(|| PositionalError(format!("{code:#x} is not a char")))?;
        visitor.visit_char(c)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let bytes = self.bytes()?;
        let s = std::str::from_utf8(bytes)
            .map_err(|e| PositionalError(format!("string is not UTF-8: {e}")))?;
        visitor.visit_borrowed_str(s)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_bytes(self.bytes()?)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.take(1)?[0] {
            0 => visitor.visit_none(),
            1 => visitor.visit_some(self),
            b => Err(PositionalError(format!("{b} is not an option tag"))),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let at = self.offset();
        let len = self.len()?;
        let seq = SETS.then(|| {
            let index = self.seqs.elements.len();
            self.seqs.elements.push(Vec::new());
            self.seqs.at.insert(at, index);
            index
        });
        visitor.visit_seq(Elements {
            reader: self,
            left: len,
            map: None,
            seq,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Elements {
            reader: self,
            left: len,
            map: None,
            seq: None,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let at = self.offset();
        let len = self.len()?;
        let index = self.maps.len();
        self.maps.push(Vec::new());
        self.map_at.insert(at, index);
        visitor.visit_map(Elements {
            reader: self,
            left: len,
            map: Some(index),
            seq: None,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_tuple(fields.len(), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_enum(self)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u32(self.u32()?)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of a sequence, tuple, struct or map, `left` still to read; `map` is a
/// map's index in [`Reader::maps`], to record where its entries are.
struct Elements<'a, 'de, const SETS: bool> {
    reader: &'a mut Reader<'de, SETS>,
    left: usize,
    map: Option<usize>,
    /// A sequence's index in [`Spans::elements`], when element spans are recorded.
    seq: Option<usize>,
}

impl<'de, const SETS: bool> de::SeqAccess<'de> for Elements<'_, 'de, SETS> {
    type Error = PositionalError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        if !SETS {
            return seed.deserialize(&mut *self.reader).map(Some);
        }
        let start = self.reader.offset();
        let element = seed.deserialize(&mut *self.reader)?;
        if let Some(index) = self.seq {
            let end = self.reader.offset();
            self.reader.seqs.elements[index].push(start..end);
        }
        Ok(Some(element))
    }

    fn size_hint(&self) -> Option<usize> {
        // Never trust a length read from the input for a preallocation beyond what the
        // input could hold.
        Some(self.left.min(self.reader.input.len()))
    }
}

impl<'de, const SETS: bool> de::MapAccess<'de> for Elements<'_, 'de, SETS> {
    type Error = PositionalError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let start = self.reader.offset();
        let key = seed.deserialize(&mut *self.reader)?;
        let end = self.reader.offset();
        if let Some(entries) = self.map.map(|index| &mut self.reader.maps[index]) {
            entries.push(Entry {
                key: start..end,
                end,
            });
        }
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let value = seed.deserialize(&mut *self.reader)?;
        let end = self.reader.offset();
        if let Some(entry) = self
            .map
            .and_then(|index| self.reader.maps[index].last_mut())
        {
            entry.end = end;
        }
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left.min(self.reader.input.len()))
    }
}

impl<'de, const SETS: bool> de::EnumAccess<'de> for &mut Reader<'de, SETS> {
    type Error = PositionalError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let index = self.u32()?;
        let value = seed.deserialize(index.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de, const SETS: bool> de::VariantAccess<'de> for &mut Reader<'de, SETS> {
    type Error = PositionalError;

    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_tuple(self, fields.len(), visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    enum Shape {
        Dot,
        Circle(f32),
        Rect { w: u16, h: u16 },
        Pair(i8, i64),
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Everything {
        b: bool,
        small: (u8, i16, u32, i128, u128),
        floats: [f64; 2],
        c: char,
        name: String,
        bytes: Vec<u8>,
        maybe: Option<Box<Everything>>,
        shapes: Vec<Shape>,
        map: BTreeMap<String, Vec<u64>>,
        unit: (),
        newtype: Meters,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Meters(f32);

    fn sample() -> Everything {
        Everything {
            b: true,
            small: (7, -3, 1 << 31, -(1 << 100), u128::MAX),
            floats: [1.5, -0.0],
            c: 'é',
            name: "grove".into(),
            bytes: vec![0, 255, 7],
            maybe: Some(Box::new(Everything {
                maybe: None,
                shapes: vec![],
                ..sample_leaf()
            })),
            shapes: vec![
                Shape::Dot,
                Shape::Circle(2.0),
                Shape::Rect { w: 3, h: 4 },
                Shape::Pair(-1, 9),
            ],
            map: BTreeMap::from([("a".into(), vec![1, u64::MAX]), ("b".into(), vec![])]),
            unit: (),
            newtype: Meters(3.5),
        }
    }

    fn sample_leaf() -> Everything {
        Everything {
            b: false,
            small: (0, 0, 0, 0, 0),
            floats: [0.0; 2],
            c: 'x',
            name: String::new(),
            bytes: vec![],
            maybe: None,
            shapes: vec![],
            map: BTreeMap::new(),
            unit: (),
            newtype: Meters(0.0),
        }
    }

    #[test]
    fn the_buffer_is_exactly_the_state() {
        // No slack left by growth: a big state costs its size once, not up to twice.
        let value = (
            vec![7u64; 100_003],
            BTreeMap::from([(String::from("k"), vec![Some(1u8), None])]),
            "tail",
        );
        let bytes = to_vec(&value).unwrap();
        assert_eq!(bytes.capacity(), bytes.len());
        assert_eq!(
            bytes.len(),
            8 + 100_003 * 8 + 8 + (8 + 1) + 8 + 2 + 1 + 8 + 4
        );
        let back: (Vec<u64>, BTreeMap<String, Vec<Option<u8>>>, String) =
            from_slice(&bytes).unwrap();
        assert_eq!((back.0, back.1, &*back.2), (value.0, value.1, value.2));
    }

    #[test]
    fn written_in_place_it_is_the_same_bytes() {
        let value = sample();
        let expected = to_vec(&value).unwrap();
        assert_eq!(encoded_len(&value).unwrap(), expected.len());
        let mut out = vec![0; expected.len()];
        write_into(&value, &mut out).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_state_that_writes_another_size_than_it_counted_is_refused() {
        // A `Serialize` that does not write the same value twice: one more element, or one
        // fewer, on each call.
        struct Drifting {
            calls: std::cell::Cell<usize>,
            grow: bool,
        }
        impl Serialize for Drifting {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let n = self.calls.get();
                self.calls.set(n + 1);
                let len = if self.grow { 2 + n } else { 2 - n };
                s.collect_seq(std::iter::repeat_n(7u32, len))
            }
        }
        for grow in [true, false] {
            let value = Drifting {
                calls: std::cell::Cell::new(0),
                grow,
            };
            let counted = encoded_len(&value).unwrap();
            assert_eq!(counted, 8 + 2 * 4);
            let mut out = vec![0; counted];
            let err = write_into(&value, &mut out).unwrap_err();
            assert!(
                err.to_string()
                    .contains("does not write the same value twice"),
                "{err}"
            );
        }
    }

    #[test]
    fn round_trips_the_data_model() {
        let value = sample();
        let bytes = to_vec(&value).unwrap();
        assert_eq!(from_slice::<Everything>(&bytes).unwrap(), value);
    }

    #[test]
    fn numbers_are_fixed_width() {
        assert_eq!(to_vec(&vec![1u64, 2]).unwrap().len(), 8 + 2 * 8);
    }

    #[test]
    fn unknown_length_sequences_are_patched() {
        struct Unsized(Vec<u32>);
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().filter(|_| true))
            }
        }
        let bytes = to_vec(&Unsized(vec![4, 5, 6])).unwrap();
        assert_eq!(from_slice::<Vec<u32>>(&bytes).unwrap(), [4, 5, 6]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let bytes = to_vec(&sample()).unwrap();
        for cut in [0, 1, 5, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                from_slice::<Everything>(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let huge_len = u64::MAX.to_le_bytes();
        assert!(from_slice::<Vec<u8>>(&huge_len).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(from_slice::<Everything>(&trailing).is_err());
    }

    #[test]
    fn floats_keep_their_bits() {
        let floats = vec![
            f64::from_bits(0x7ff8_0000_dead_beef),
            f64::from_bits(0xfff0_0000_0000_0001),
            -0.0,
            f64::MIN_POSITIVE / 2.0,
        ];
        let singles = (f32::from_bits(0x7fc0_1234), -0.0f32);
        let back: (Vec<f64>, (f32, f32)) =
            from_slice(&to_vec(&(&floats, singles)).unwrap()).unwrap();
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.0), bits(&floats));
        assert_eq!(back.1.0.to_bits(), 0x7fc0_1234);
        assert_eq!(back.1.1.to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn a_map_entry_read_back_with_another_value_is_refused() {
        // Reads a map whose values are written one way and read another (the value's
        // `Deserialize` adds one): the entries are found by key, their values compared.
        #[derive(Serialize, Debug)]
        struct Plain(u8);
        #[derive(Serialize, Debug, PartialEq)]
        struct Bumped(u8);
        impl<'de> de::Deserialize<'de> for Bumped {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                u8::deserialize(d).map(|v| Bumped(v + 1))
            }
        }
        let saved = BTreeMap::from([(1u8, Plain(1)), (2, Plain(2))]);
        let bytes = to_vec(&saved).unwrap();
        assert!(from_slice::<BTreeMap<u8, Bumped>>(&bytes).is_err());
        assert_eq!(
            from_slice::<BTreeMap<u8, u8>>(&bytes).unwrap(),
            BTreeMap::from([(1, 1), (2, 2)])
        );
    }

    #[test]
    fn conditional_skips_are_refused() {
        #[derive(Serialize)]
        struct Skips {
            #[serde(skip_serializing_if = "Option::is_none")]
            x: Option<u8>,
        }
        let err = to_vec(&Skips { x: None }).unwrap_err();
        assert!(err.to_string().contains("`x`"), "{err}");
    }
}
