//! Comparing a state as saved with the same state as the new version read it: the
//! [`FieldReport`].
//!
//! Both sides are [`Dynamic`] trees: the old state's bytes, and the new value written
//! again by field name. Walking them together finds:
//! - in a map whose keys are strings (a struct, or a map keyed by strings), keys only the
//!   old side has (removed: dropped) and keys only the new side has (added: took their
//!   default); a removed and an added key under the same parent, each the only one of its
//!   kind there, are reported as one probable rename, its value kept when the added key
//!   holds the removed one's value as the new type reads it (a rename through an alias:
//!   an `f64` read as an `f32` is rounded, which is kept, and reported as lossy under the
//!   new name);
//! - numbers that differ (lossy). A number is carried exactly when the new value equals
//!   the old one as a number: integers and floats are compared by exact value, with no
//!   rounding (a `u64` above 2^53 read as an `f64` is lossy, as is an `f64` read as an
//!   `f32` unless the `f32` holds it exactly); infinities by sign; zeros by sign (`-0.0`
//!   read as `0.0` is lossy); NaNs by sign, quiet bit and payload, an `f32` NaN being the
//!   `f64` NaN whose payload is the `f32`'s shifted left by 29 bits. A number read into a
//!   type that cannot hold it at all (`-1` or 2^40 as a `u32`) is not here: serde refuses it,
//!   and the restore fails naming the field.
//!
//! Elements of sequences are compared by position and entries of other maps by key; in
//! their paths, positions and non-string keys are written `[*]` for added, removed and
//! renamed fields (one entry per field, with a count), and spelled out for lossy values.
//! Strings, booleans and bytes are not compared: only a type's own `Deserialize` changes
//! them (an enum variant read through an alias, say), which is the type's decision.

use std::collections::HashMap;

use crate::dynamic::Dynamic;
use crate::report::{
    AddedField, FieldReport, LossyValue, REPORT_LIMIT, RemovedField, RenamedField,
};

/// The report for `old` (a state as saved) read by the new version as `new` (written
/// again by field name).
pub(crate) fn compare(old: &Dynamic, new: &Dynamic) -> FieldReport {
    let mut walk = Walk::default();
    walk.both(old, new, &mut String::new(), &mut String::new());
    walk.finish(old, new)
}

/// A field only one side has, under a parent.
struct OneSided<'a> {
    parent: String,
    name: String,
    count: u64,
    bytes: u64,
    /// The first value met, to match renames.
    sample: &'a Dynamic,
}

#[derive(Default)]
struct Walk<'a> {
    removed: Vec<OneSided<'a>>,
    added: Vec<OneSided<'a>>,
    removed_at: HashMap<(String, String), usize>,
    added_at: HashMap<(String, String), usize>,
    lossy: Vec<LossyValue>,
    lossy_total: u64,
}

/// Small maps are searched in place; bigger ones through an index.
const INDEX_FROM: usize = 16;

impl<'a> Walk<'a> {
    /// Compares two values found at `path` (exact) and `pattern` (positions as `[*]`).
    fn both(
        &mut self,
        old: &'a Dynamic,
        new: &'a Dynamic,
        path: &mut String,
        pattern: &mut String,
    ) {
        match (old, new) {
            (Dynamic::Map(o), Dynamic::Map(n)) => self.maps(o, n, path, pattern),
            (Dynamic::Seq(o), Dynamic::Seq(n)) => {
                let (at, pat) = (path.len(), pattern.len());
                pattern.push_str("[*]");
                for (i, (o, n)) in o.iter().zip(n).enumerate() {
                    use std::fmt::Write;
                    path.truncate(at);
                    let _ = write!(path, "[{i}]");
                    self.both(o, n, path, pattern);
                }
                path.truncate(at);
                let parent = pattern[..pat].to_owned();
                for extra in o.iter().skip(n.len()) {
                    self.one_sided(true, &parent, "[*]", extra);
                }
                for extra in n.iter().skip(o.len()) {
                    self.one_sided(false, &parent, "[*]", extra);
                }
                pattern.truncate(pat);
            }
            _ => {
                if let Some(false) = same_number(old, new) {
                    self.lossy_total += 1;
                    if self.lossy.len() < REPORT_LIMIT {
                        self.lossy.push(LossyValue {
                            path: if path.is_empty() {
                                ".".into()
                            } else {
                                path.clone()
                            },
                            was: exact_text(old),
                            now: exact_text(new),
                        });
                    }
                }
            }
        }
    }

    fn maps(
        &mut self,
        old: &'a [(Dynamic, Dynamic)],
        new: &'a [(Dynamic, Dynamic)],
        path: &mut String,
        pattern: &mut String,
    ) {
        let (at, pat) = (path.len(), pattern.len());
        let index: Option<HashMap<Vec<u8>, usize>> = (new.len() > INDEX_FROM).then(|| {
            new.iter()
                .enumerate()
                .map(|(i, (key, _))| (key_bytes(key), i))
                .collect()
        });
        let find = |key: &Dynamic| -> Option<usize> {
            match &index {
                Some(index) => index.get(&key_bytes(key)).copied(),
                None => new.iter().position(|(k, _)| k == key),
            }
        };
        let mut matched = vec![false; new.len()];
        let root = at == 0;
        for (key, value) in old {
            match find(key) {
                Some(i) => {
                    matched[i] = true;
                    push_segments(key, root, path, pattern);
                    self.both(value, &new[i].1, path, pattern);
                    path.truncate(at);
                    pattern.truncate(pat);
                }
                None => {
                    let (_, segment_pattern) = segments(key, root);
                    self.one_sided(true, &pattern[..pat], &segment_pattern, value);
                }
            }
        }
        for ((key, value), matched) in new.iter().zip(matched) {
            if !matched {
                let (_, segment_pattern) = segments(key, root);
                self.one_sided(false, &pattern[..pat], &segment_pattern, value);
            }
        }
    }

    /// A value only the old side (`removed`) or the new side has.
    fn one_sided(&mut self, removed: bool, parent: &str, name: &str, value: &'a Dynamic) {
        let (list, at) = if removed {
            (&mut self.removed, &mut self.removed_at)
        } else {
            (&mut self.added, &mut self.added_at)
        };
        let bytes = if removed {
            value.to_vec().map_or(0, |b| b.len() as u64)
        } else {
            0
        };
        let key = (parent.to_owned(), name.to_owned());
        match at.get(&key) {
            Some(&i) => {
                list[i].count += 1;
                list[i].bytes += bytes;
            }
            None => {
                at.insert(key, list.len());
                list.push(OneSided {
                    parent: parent.to_owned(),
                    name: name.to_owned(),
                    count: 1,
                    bytes,
                    sample: value,
                });
            }
        }
    }

    fn finish(mut self, old: &Dynamic, new: &Dynamic) -> FieldReport {
        let mut renamed = Vec::new();
        let mut paired_removed = vec![false; self.removed.len()];
        let mut paired_added = vec![false; self.added.len()];
        // The values of renames read through an alias, compared once every pair is found.
        let mut carried_over: Vec<(&'a Dynamic, &'a Dynamic, String)> = Vec::new();
        // First a removed and an added field holding the same value (as the new field's
        // type holds it: an `f64` read as an `f32` is rounded), the only such pair under
        // their parent: a rename read through an alias.
        for (r, gone) in self.removed.iter().enumerate() {
            let same = |a: &OneSided<'_>, b: &OneSided<'_>| {
                a.parent == b.parent && carried(a.sample, b.sample) && !is_position(&a.name)
            };
            let candidates: Vec<usize> = (0..self.added.len())
                .filter(|&a| same(gone, &self.added[a]))
                .collect();
            let [a] = candidates[..] else { continue };
            if self
                .removed
                .iter()
                .filter(|other| same(other, &self.added[a]))
                .count()
                != 1
            {
                continue;
            }
            paired_removed[r] = true;
            paired_added[a] = true;
            let to = join(&self.added[a].parent, &self.added[a].name);
            carried_over.push((gone.sample, self.added[a].sample, to.clone()));
            renamed.push(RenamedField {
                from: join(&gone.parent, &gone.name),
                to,
                kept: true,
            });
        }
        // Then the only removed and the only added field of a kind under their parent.
        let removed_left: Vec<bool> = paired_removed.iter().map(|p| !p).collect();
        let added_left: Vec<bool> = paired_added.iter().map(|p| !p).collect();
        for (r, gone) in self.removed.iter().enumerate() {
            if !removed_left[r] {
                continue;
            }
            let candidates: Vec<usize> = self
                .added
                .iter()
                .enumerate()
                .filter(|&(i, a)| {
                    added_left[i] && a.parent == gone.parent && similar(gone.sample, a.sample)
                })
                .map(|(i, _)| i)
                .collect();
            let [a] = candidates[..] else { continue };
            let came = &self.added[a];
            let rivals = self
                .removed
                .iter()
                .enumerate()
                .filter(|&(i, other)| {
                    removed_left[i]
                        && other.parent == came.parent
                        && similar(other.sample, came.sample)
                })
                .count();
            if rivals != 1 || is_position(&gone.name) {
                continue;
            }
            paired_removed[r] = true;
            paired_added[a] = true;
            let (to, kept) = (
                join(&came.parent, &came.name),
                carried(gone.sample, came.sample),
            );
            if kept {
                carried_over.push((gone.sample, came.sample, to.clone()));
            }
            renamed.push(RenamedField {
                from: join(&gone.parent, &gone.name),
                to,
                kept,
            });
        }
        // A value kept through an alias may still have been rounded on the way: compared
        // as any field read under its own name, under its new name. The two sides hold
        // the same fields ([`carried`]), so only numbers are met.
        for (was, now, to) in carried_over {
            let mut pattern = to.clone();
            self.both(was, now, &mut to.clone(), &mut pattern);
        }
        let mut truncated = 0u64;
        let mut limit = |n: usize| {
            truncated += n.saturating_sub(REPORT_LIMIT) as u64;
            n.min(REPORT_LIMIT)
        };
        let added: Vec<AddedField> = self
            .added
            .iter()
            .zip(&paired_added)
            .filter(|(_, paired)| !**paired)
            .map(|(a, _)| AddedField {
                path: join(&a.parent, &a.name),
                count: a.count,
            })
            .collect();
        let removed: Vec<RemovedField> = self
            .removed
            .iter()
            .zip(&paired_removed)
            .filter(|(_, paired)| !**paired)
            .map(|(r, _)| RemovedField {
                path: join(&r.parent, &r.name),
                count: r.count,
                bytes: r.bytes,
            })
            .collect();
        let keep = (
            limit(added.len()),
            limit(removed.len()),
            limit(renamed.len()),
        );
        let unrelated = unrelated(old, new, &renamed);
        FieldReport {
            added: added.into_iter().take(keep.0).collect(),
            removed: removed.into_iter().take(keep.1).collect(),
            renamed: renamed.into_iter().take(keep.2).collect(),
            lossy: self.lossy,
            lossy_total: self.lossy_total,
            unrelated,
            migrated: None,
            truncated,
        }
    }
}

/// The old state is a struct with fields, the new one has fields too, and not one of them
/// is the same field (by name, or through an alias that carried its value).
fn unrelated(old: &Dynamic, new: &Dynamic, renamed: &[RenamedField]) -> bool {
    let (Some(old), Some(new)) = (old.entries(), new.entries()) else {
        return false;
    };
    if old.is_empty() || new.is_empty() {
        return false;
    }
    let shared = old.iter().any(|(key, _)| new.iter().any(|(k, _)| k == key));
    let aliased = renamed
        .iter()
        .any(|r| r.kept && !r.from.contains(['.', '[']));
    !shared && !aliased
}

/// Appends [`segments`] of `key` to `path` and `pattern`, without allocating for the
/// common keys.
fn push_segments(key: &Dynamic, root: bool, path: &mut String, pattern: &mut String) {
    use std::fmt::Write;
    match key {
        Dynamic::Str(name) => {
            if !root {
                path.push('.');
                pattern.push('.');
            }
            path.push_str(name);
            pattern.push_str(name);
        }
        Dynamic::Int(n) => {
            let _ = write!(path, "[{n}]");
            pattern.push_str("[*]");
        }
        other => {
            let _ = write!(path, "[{other}]");
            pattern.push_str("[*]");
        }
    }
}

/// A path segment for `key`, spelled out and as a pattern: `.name` (`name` at the root)
/// for a string, `[key]` and `[*]` for anything else.
fn segments(key: &Dynamic, root: bool) -> (String, String) {
    match key {
        Dynamic::Str(name) if root => (name.clone(), name.clone()),
        Dynamic::Str(name) => (format!(".{name}"), format!(".{name}")),
        Dynamic::Int(n) => (format!("[{n}]"), "[*]".to_owned()),
        other => (format!("[{other}]"), "[*]".to_owned()),
    }
}

fn join(parent: &str, name: &str) -> String {
    let joined = format!("{parent}{name}");
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

fn is_position(name: &str) -> bool {
    name.starts_with('[')
}

/// A key, comparable through a hash: its encoding.
fn key_bytes(key: &Dynamic) -> Vec<u8> {
    match key {
        Dynamic::Str(s) => {
            let mut bytes = Vec::with_capacity(s.len() + 1);
            bytes.push(b's');
            bytes.extend_from_slice(s.as_bytes());
            bytes
        }
        other => {
            let mut bytes = vec![b'v'];
            bytes.extend(other.to_vec().unwrap_or_default());
            bytes
        }
    }
}

/// Whether a removed and an added value could be one field renamed: numbers with
/// numbers, strings with strings, sequences whose first elements are alike, maps with a
/// key in common (or either empty), nil (`None`) with nil.
fn similar(a: &Dynamic, b: &Dynamic) -> bool {
    use Dynamic::*;
    match (a, b) {
        (Int(_) | F32(_) | F64(_), Int(_) | F32(_) | F64(_)) => true,
        (Seq(x), Seq(y)) => match (x.first(), y.first()) {
            (Some(x), Some(y)) => similar(x, y),
            _ => true,
        },
        (Map(x), Map(y)) => {
            x.is_empty() || y.is_empty() || x.iter().any(|(k, _)| y.iter().any(|(l, _)| k == l))
        }
        _ => a.kind() == b.kind(),
    }
}

/// Whether `new` is `old` as a field of another name read it: the same value, its numbers
/// either the same number or `old`'s rounded to `new`'s type (an `f64` read as an `f32`,
/// an integer read as a float), its maps with the same keys, its sequences as long.
fn carried(old: &Dynamic, new: &Dynamic) -> bool {
    use Dynamic::*;
    match (old, new) {
        (Seq(o), Seq(n)) => o.len() == n.len() && o.iter().zip(n).all(|(o, n)| carried(o, n)),
        (Map(o), Map(n)) => {
            o.len() == n.len()
                && o.iter().enumerate().all(|(i, (key, o))| {
                    // Written again in the same order, as a rule: looked up when not.
                    n.get(i)
                        .filter(|(k, _)| k == key)
                        .or_else(|| n.iter().find(|(k, _)| k == key))
                        .is_some_and(|(_, n)| carried(o, n))
                })
        }
        _ => match same_number(old, new) {
            Some(same) => same || rounded(old, new),
            None => old == new,
        },
    }
}

/// Whether the number `new` is the number `old` converted to `new`'s type, as serde reads
/// one as the other.
fn rounded(old: &Dynamic, new: &Dynamic) -> bool {
    use Dynamic::*;
    match (old, new) {
        (Int(n), F32(x)) => (*n as f32).to_bits() == x.to_bits(),
        (Int(n), F64(x)) => (*n as f64).to_bits() == x.to_bits(),
        (F64(was), F32(now)) if was.is_nan() => now.is_nan(),
        (F64(was), F32(now)) => (*was as f32).to_bits() == now.to_bits(),
        // An `f32` read as an `f64` is the same number, or not the same value.
        _ => false,
    }
}

/// Whether two numbers are the same number (see the module's docs); `None` when either is
/// not a number.
/// A number as a lossy value's report shows it: an `f32` by the exact value it holds (as
/// the shortest `f64` that is that value), so that `0.1` narrowed to an `f32` reads
/// `1.0000000149011612e-1 (f32)`, not the `1e-1` an `f32` prints as.
fn exact_text(value: &Dynamic) -> String {
    match *value {
        Dynamic::F32(x) if x.is_finite() => format!("{:e} (f32)", f64::from(x)),
        _ => value.to_string(),
    }
}

fn same_number(old: &Dynamic, new: &Dynamic) -> Option<bool> {
    Some(match (number(old)?, number(new)?) {
        (Number::Int(a), Number::Int(b)) => a == b,
        (Number::Float(a), Number::Float(b)) => a.to_bits() == b.to_bits(),
        (Number::Int(n), Number::Float(x)) | (Number::Float(x), Number::Int(n)) => {
            int_is_float(n, x)
        }
    })
}

enum Number {
    Int(i128),
    /// Widened to an `f64` bit for bit (see [`widen`]).
    Float(f64),
}

fn number(value: &Dynamic) -> Option<Number> {
    match *value {
        Dynamic::Int(n) => Some(Number::Int(n)),
        Dynamic::F32(x) => Some(Number::Float(widen(x))),
        Dynamic::F64(x) => Some(Number::Float(x)),
        _ => None,
    }
}

/// An `f32` as the `f64` of the same value; a NaN keeps its sign, quiet bit and payload
/// (shifted to the top of the `f64`'s), which a conversion by the FPU does not promise.
fn widen(x: f32) -> f64 {
    if !x.is_nan() {
        return f64::from(x);
    }
    let bits = u64::from(x.to_bits());
    let sign = (bits >> 31) << 63;
    let payload = (bits & 0x007f_ffff) << 29;
    f64::from_bits(sign | 0x7ff0_0000_0000_0000 | payload)
}

/// Whether the integer `n` and the float `x` are the same number.
fn int_is_float(n: i128, x: f64) -> bool {
    const TWO_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    x.is_finite() && x.fract() == 0.0 && (-TWO_127..TWO_127).contains(&x) && x as i128 == n
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::state::{StateFormat, load, save};

    /// What a restore of `old` as a `New` reports.
    fn restored<Old: Serialize, New: Serialize + serde::de::DeserializeOwned>(
        old: &Old,
    ) -> (New, FieldReport) {
        let bytes = save(old, StateFormat::SelfDescribing).unwrap();
        let new: New = load(&bytes, StateFormat::SelfDescribing).unwrap();
        let tree = Dynamic::from_slice(&bytes).unwrap();
        let report = compare(&tree, &Dynamic::of(&new).unwrap());
        (new, report)
    }

    #[derive(Serialize, Deserialize, Default, Clone)]
    #[serde(default)]
    struct Enemy {
        hp: u32,
        name: String,
    }

    #[derive(Serialize, Deserialize, Default)]
    #[serde(default)]
    struct V1 {
        count: u64,
        name: String,
        speed: f64,
        enemies: Vec<Enemy>,
    }

    #[derive(Serialize, Deserialize, Default)]
    #[serde(default)]
    struct EnemyV2 {
        health: u32,
        name: String,
    }

    #[derive(Serialize, Deserialize, Default)]
    #[serde(default)]
    struct V2 {
        count: u64,
        speed: f32,
        enemies: Vec<EnemyV2>,
        label: Vec<String>,
    }

    fn v1() -> V1 {
        V1 {
            count: 3,
            name: "twelve chars".into(),
            speed: 1e300,
            enemies: vec![
                Enemy {
                    hp: 5,
                    name: "a".into(),
                };
                3
            ],
        }
    }

    #[test]
    fn added_removed_renamed_and_lossy_with_nested_paths() {
        let (new, report) = restored::<V1, V2>(&v1());
        assert_eq!(new.speed.to_bits(), f32::INFINITY.to_bits());
        assert_eq!(
            report.added,
            [AddedField {
                path: "label".into(),
                count: 1
            }]
        );
        assert_eq!(
            report.removed,
            [RemovedField {
                path: "name".into(),
                count: 1,
                bytes: 13
            }]
        );
        assert_eq!(
            report.renamed,
            [RenamedField {
                from: "enemies[*].hp".into(),
                to: "enemies[*].health".into(),
                kept: false
            }]
        );
        assert_eq!(report.lossy_total, 1);
        assert_eq!(report.lossy[0].path, "speed");
        assert_eq!(report.lossy[0].was, "1e300 (f64)");
        assert_eq!(report.lossy[0].now, "inf (f32)");
        assert!(!report.unrelated);
    }

    #[test]
    fn a_narrowed_value_reads_as_the_value_it_became() {
        let (_, report) = restored::<f64, f32>(&0.1);
        assert_eq!(report.lossy[0].was, "1e-1 (f64)");
        assert_eq!(report.lossy[0].now, "1.0000000149011612e-1 (f32)");
        let (_, report) = restored::<u64, f64>(&((1 << 53) + 1));
        assert_eq!(report.lossy[0].was, "9007199254740993");
        assert_eq!(report.lossy[0].now, "9.007199254740992e15 (f64)");
    }

    #[test]
    fn the_same_state_reports_nothing() {
        let (_, report) = restored::<V1, V1>(&v1());
        assert!(report.is_unchanged(), "{report}");
    }

    #[test]
    fn exact_numbers_are_not_lossy_and_the_rest_are() {
        fn lossy<A: Serialize, B: Serialize + serde::de::DeserializeOwned>(a: A) -> u64 {
            restored::<A, B>(&a).1.lossy_total
        }
        assert_eq!(lossy::<u32, u64>(7), 0);
        assert_eq!(lossy::<f32, f64>(0.1), 0, "widening is exact");
        assert_eq!(lossy::<f64, f32>(0.5), 0, "an f32 holds 0.5");
        assert_eq!(lossy::<f64, f32>(0.1), 1, "but not 0.1");
        assert_eq!(lossy::<u64, f64>(1 << 53), 0);
        assert_eq!(lossy::<u64, f64>((1 << 53) + 1), 1);
        assert_eq!(lossy::<i64, f32>(-16_777_217), 1);
        assert_eq!(lossy::<f64, f32>(-0.0), 0, "the sign of zero kept");
        // NaN payloads: an f32 holds the top 23 bits of an f64's.
        assert_eq!(lossy::<f32, f64>(f32::from_bits(0x7fe0_0001)), 0);
        // A signaling NaN comes back quiet from the FPU's conversion: said so.
        assert_eq!(lossy::<f32, f64>(f32::from_bits(0x7fa0_0001)), 1);
        assert_eq!(lossy::<f64, f32>(f64::from_bits(0x7ff8_0000_2000_0000)), 0);
        assert_eq!(lossy::<f64, f32>(f64::from_bits(0x7ff8_0000_0000_0001)), 1);
        assert_eq!(lossy::<f64, f32>(f64::INFINITY), 0);
    }

    #[test]
    fn a_state_sharing_no_field_is_unrelated() {
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct Other {
            score: u64,
            title: String,
            ratio: f32,
        }
        let (_, report) = restored::<V1, Other>(&v1());
        assert!(report.unrelated, "{report}");
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct Empty {}
        let (_, report) = restored::<V1, Empty>(&v1());
        assert!(
            !report.unrelated,
            "dropping every field is a removal: {report}"
        );
        assert_eq!(report.removed.len(), 4);
    }

    #[test]
    fn an_alias_keeps_the_value_and_says_so() {
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct Aliased {
            #[serde(alias = "count")]
            ticks: u64,
        }
        let (new, report) = restored::<V1, Aliased>(&v1());
        assert_eq!(new.ticks, 3);
        assert!(
            report.renamed.iter().any(|r| r.from == "count" && r.kept),
            "{report}"
        );
        assert!(!report.unrelated);
    }

    #[test]
    fn an_alias_into_a_narrower_type_keeps_the_value_and_reports_the_rounding() {
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct Old {
            position: f64,
            steps: u64,
            exact: f64,
        }
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct New {
            #[serde(alias = "position")]
            pos: f32,
            #[serde(alias = "steps")]
            walked: f64,
            #[serde(alias = "exact")]
            half: f32,
        }
        let old = Old {
            position: 7077.1,
            steps: (1 << 53) + 1,
            exact: 0.5,
        };
        let (new, report) = restored::<Old, New>(&old);
        assert_eq!(new.pos.to_bits(), 7077.1f32.to_bits());
        let renamed: Vec<_> = report
            .renamed
            .iter()
            .map(|r| (r.from.as_str(), r.to.as_str(), r.kept))
            .collect();
        assert_eq!(
            renamed,
            [
                ("position", "pos", true),
                ("steps", "walked", true),
                ("exact", "half", true)
            ],
            "{report}"
        );
        assert!(report.added.is_empty() && report.removed.is_empty());
        let lossy: Vec<_> = report.lossy.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(lossy, ["pos", "walked"], "{report}");
        assert_eq!(report.lossy_total, 2);
        assert!(!report.unrelated);
    }

    #[test]
    fn a_rename_into_a_narrower_type_without_an_alias_is_still_a_dropped_value() {
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct Old {
            position: f64,
        }
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct New {
            pos: f32,
        }
        let (_, report) = restored::<Old, New>(&Old { position: 0.1 });
        let renamed: Vec<_> = report
            .renamed
            .iter()
            .map(|r| (r.from.as_str(), r.to.as_str(), r.kept))
            .collect();
        assert_eq!(renamed, [("position", "pos", false)], "{report}");
        assert!(!report.is_lossy(), "{report}");
    }

    #[test]
    fn fields_of_many_elements_are_one_entry_each() {
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct World {
            units: std::collections::BTreeMap<u32, Enemy>,
        }
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct Unit {
            hp: u32,
            mana: f32,
            shield: Option<u8>,
        }
        #[derive(Serialize, Deserialize, Default)]
        #[serde(default)]
        struct World2 {
            units: std::collections::BTreeMap<u32, Unit>,
        }
        let world = World {
            units: (0..100)
                .map(|i| {
                    (
                        i,
                        Enemy {
                            hp: i,
                            name: "n".into(),
                        },
                    )
                })
                .collect(),
        };
        let (_, report) = restored::<World, World2>(&world);
        let paths: Vec<_> = report
            .added
            .iter()
            .map(|a| (a.path.as_str(), a.count))
            .collect();
        assert_eq!(paths, [("units[*].mana", 100), ("units[*].shield", 100)]);
        assert_eq!(report.removed[0].path, "units[*].name");
        assert_eq!(
            (report.removed[0].count, report.removed[0].bytes),
            (100, 200)
        );
    }
}
