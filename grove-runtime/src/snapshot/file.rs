//! A snapshot file: one module's state with what it is, checked before it is believed.
//!
//! ```text
//! "GROVESNP" | version: u32 LE | header length: u32 LE | header (JSON) | state | xxh3-64 of all before: u64 LE
//! ```
//! The state is the module's self-describing encoding (by field name), so any later
//! version of the module can read it as a reload would. A file is written whole to a
//! temporary name, flushed to disk, renamed over the old one, and the directory flushed:
//! a crash at any point leaves the previous snapshot or the new one, never a mix.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"GROVESNP";

/// The layout this host writes, and the newest it reads.
pub(crate) const VERSION: u32 = 1;

/// What a snapshot says about the state it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) module: String,
    pub(crate) type_name: String,
    pub(crate) sdk_version: String,
    pub(crate) schema_fingerprint: u64,
    /// The encoding of the state ([`grove::abi::STATE_FORMAT_SELF_DESCRIBING`] of the SDK
    /// that wrote it): a host reads only its own.
    pub(crate) state_format: u32,
    pub(crate) generation: u64,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub(crate) written_ms: u64,
    /// The version of the module's state that wrote it (0: unknown, a snapshot written
    /// before versions, or by a module built without them).
    #[serde(default)]
    pub(crate) state_version: u32,
}

impl Header {
    /// How long ago it was taken.
    pub(crate) fn age(&self) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.saturating_sub(Duration::from_millis(self.written_ms))
    }
}

/// Why a file is not a snapshot this host can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotProblem {
    /// Empty or shorter than any snapshot.
    #[error("it is empty or truncated ({0} bytes)")]
    Truncated(usize),
    /// Not a grove snapshot.
    #[error("it is not a grove snapshot (no GROVESNP mark)")]
    Foreign,
    /// Written by a newer grove.
    #[error("it was written in snapshot layout {0}, newer than this host's {VERSION}")]
    Future(u32),
    /// Its checksum does not match: bits changed, or the file was cut short.
    #[error("its checksum does not match: the file is corrupt or was cut short")]
    Corrupt,
    /// Its header does not parse.
    #[error("its header does not parse: {0}")]
    BadHeader(String),
    /// It holds another module.
    #[error("it holds module `{0}`")]
    OtherModule(String),
    /// Its state is in an encoding this host does not read.
    #[error("its state is in encoding {0}, not this host's {1}")]
    OtherEncoding(u32, u32),
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The bytes of a snapshot of `state`.
pub(crate) fn encode(header: &Header, state: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(header).expect("a header is plain data");
    let mut out = Vec::with_capacity(24 + header.len() + state.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(header.len())
            .expect("a small header")
            .to_le_bytes(),
    );
    out.extend_from_slice(&header);
    out.extend_from_slice(state);
    let checksum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// [`decode`], for module `module`'s snapshot: a file of another module, or a state in an
/// encoding this version does not read, is a problem too.
pub(crate) fn decode_for<'a>(
    bytes: &'a [u8],
    module: &str,
) -> Result<(Header, &'a [u8]), SnapshotProblem> {
    let (header, state) = decode(bytes)?;
    if header.module != module {
        return Err(SnapshotProblem::OtherModule(header.module));
    }
    if header.state_format != grove::abi::STATE_FORMAT_SELF_DESCRIBING {
        return Err(SnapshotProblem::OtherEncoding(
            header.state_format,
            grove::abi::STATE_FORMAT_SELF_DESCRIBING,
        ));
    }
    Ok((header, state))
}

/// The header and state of a snapshot's bytes, checked.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), SnapshotProblem> {
    if bytes.len() < 8 + 4 + 4 + 8 {
        if bytes.len() >= 8 && &bytes[..8] != MAGIC {
            return Err(SnapshotProblem::Foreign);
        }
        return Err(SnapshotProblem::Truncated(bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err(SnapshotProblem::Foreign);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version > VERSION {
        return Err(SnapshotProblem::Future(version));
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 8);
    if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != checksum {
        return Err(SnapshotProblem::Corrupt);
    }
    let header_len = u32::from_le_bytes(body[12..16].try_into().expect("4 bytes")) as usize;
    let header_end = 16usize
        .checked_add(header_len)
        .filter(|end| *end <= body.len())
        .ok_or(SnapshotProblem::Corrupt)?;
    let header: Header = serde_json::from_slice(&body[16..header_end])
        .map_err(|e| SnapshotProblem::BadHeader(e.to_string()))?;
    Ok((header, &body[header_end..]))
}

/// The snapshot file of module `module` in `dir`.
pub(crate) fn path_for(dir: &Path, module: &str) -> PathBuf {
    dir.join(format!("{module}.snapshot"))
}

/// Writes `bytes` to `path` atomically: a temporary file, flushed, renamed over `path`,
/// and the directory flushed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("snapshot");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        // Made again if it went away while the engine ran.
        std::fs::create_dir_all(dir)?;
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Moves a file that is not a usable snapshot out of the way, next to where it was;
/// returns where it went. Never deletes it.
pub(crate) fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let aside = path.with_extension(format!("snapshot.bad-{}", now_ms()));
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            module: "m".into(),
            type_name: "M".into(),
            sdk_version: "0.1.0".into(),
            schema_fingerprint: 7,
            state_format: grove::abi::STATE_FORMAT_SELF_DESCRIBING,
            generation: 3,
            written_ms: now_ms(),
            state_version: 2,
        }
    }

    #[test]
    fn a_snapshot_reads_back_exactly() {
        let header = header();
        let bytes = encode(&header, b"state bytes");
        let (read, state) = decode(&bytes).unwrap();
        assert_eq!(read, header);
        assert_eq!(state, b"state bytes");
    }

    #[test]
    fn every_kind_of_bad_file_is_told_apart() {
        let good = encode(&header(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(decode(&[]), Err(SnapshotProblem::Truncated(0)));
        assert_eq!(
            decode(&good[..good.len() - 3]),
            Err(SnapshotProblem::Corrupt)
        );
        assert_eq!(decode(&good[..10]), Err(SnapshotProblem::Truncated(10)));
        assert_eq!(
            decode(b"\x7fELF and the rest of a library"),
            Err(SnapshotProblem::Foreign)
        );
        for bit in [
            0usize,
            9 * 8 + 1,
            20 * 8,
            (good.len() - 9) * 8 + 3,
            (good.len() - 1) * 8,
        ] {
            let mut flipped = good.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode(&flipped).is_err(),
                "bit {bit} flipped went unnoticed"
            );
        }
        let mut future = good.clone();
        future[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
        assert_eq!(decode(&future), Err(SnapshotProblem::Future(VERSION + 1)));
    }
}
