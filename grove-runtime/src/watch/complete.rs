//! Whether a library file is complete, and its private copy if it is.
//!
//! A file is taken when it is a valid ELF shared object whose sections all lie inside it,
//! and it did not change while it was copied. It is copied straight into the staging area
//! (in the kernel: `copy_file_range`), then checked and its loadable segments hashed from a
//! read-only mapping of the copy: nothing of it goes through the heap, so hundreds of new libraries found at
//! once leave no memory behind, and the copy is the one `dlopen` opens.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

use crate::ffi::library::Snapshot;
use crate::ffi::mapped::Mapped;
use crate::ffi::staging::{StageError, StagedFile, Staging};

/// Copies the file at `path` into `staging` if it is a complete ELF shared object;
/// otherwise says why not. The ELF header is read first: a file too short for its own
/// section table is not copied. The copy's exports (its module header included) are read
/// here too, from the same mapping: the frame thread that loads it only checks them. The
/// mapping is handed back with the snapshot, to be unmapped once the snapshot is handed
/// on.
///
/// The copy is a snapshot only if the file did not change while it was copied: a writer
/// that truncates and rewrites in place meanwhile would otherwise hand over the start of
/// one version stitched to the rest of another (seen in practice: an old header whose
/// section table offset lands inside the new file's data). Size, mtime and ctime are
/// compared before and after; any difference means "not yet", and the next event or
/// re-check copies again.
pub(super) fn stage_if_complete(
    path: &Path,
    staging: &Staging,
) -> io::Result<Result<(Snapshot, Mapped), String>> {
    let mut file = File::open(path)?;
    let before = file.metadata()?;
    let len = before.len();
    if len == 0 {
        return Ok(Err("the file is empty".into()));
    }
    let mut header = Vec::with_capacity(64);
    (&mut file).take(64).read_to_end(&mut header)?;
    match section_table_end(&header) {
        None => {
            return Ok(Err(
                "it has no ELF header: a text file or another kind of file, not a shared library"
                    .into(),
            ));
        }
        Some(end) if end > len => {
            return Ok(Err(format!(
                "it is {len} bytes long but its ELF section table ends at byte {end}: a \
                 truncated file"
            )));
        }
        Some(_) => {}
    }
    file.rewind()?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = match staging.stage_copy(&stem, &mut file) {
        Ok(staged) => StagedFile::new(staged),
        Err(StageError::Read(e)) => return Err(e),
        Err(StageError::Staging(e)) => return Err(io::Error::other(e.to_string())),
    };
    let after = file.metadata()?;
    let copy = File::open(staged.path())?;
    let copied = copy.metadata()?.len();
    if !same_version(&before, &after) || copied != after.len() {
        return Ok(Err("the file changed while it was read".into()));
    }
    let mapped = Mapped::staged(&copy)?;
    let (hash, exports) = match crate::ffi::elf::check_hash_inspect(mapped.bytes()) {
        Ok(found) => found,
        Err(reason) => return Ok(Err(reason)),
    };
    let resolved = crate::ffi::staging::opened_path(&file, path);
    Ok(Ok((
        Snapshot {
            staged,
            hash,
            exports,
            resolved,
            metadata: after,
        },
        mapped,
    )))
}

/// Whether two `stat`s of one open file show the same content version.
fn same_version(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.len() == b.len()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
        && a.ctime() == b.ctime()
        && a.ctime_nsec() == b.ctime_nsec()
}

/// Where the section header table ends, from the ELF header in `header`; `None` if it is
/// not an ELF header.
pub(super) fn section_table_end(header: &[u8]) -> Option<u64> {
    if header.get(..4)? != b"\x7fELF" {
        return None;
    }
    let little_endian = match header.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let uint = |at: usize, size: usize| -> Option<u64> {
        let field = header.get(at..at + size)?;
        let mut value = [0u8; 8];
        if little_endian {
            value[..size].copy_from_slice(field);
            Some(u64::from_le_bytes(value))
        } else {
            value[8 - size..].copy_from_slice(field);
            Some(u64::from_be_bytes(value))
        }
    };
    // e_shoff, e_shentsize, e_shnum for ELF32 and ELF64.
    let (offset, entry_size, count) = match header.get(4)? {
        1 => (uint(0x20, 4)?, uint(0x2e, 2)?, uint(0x30, 2)?),
        2 => (uint(0x28, 8)?, uint(0x3a, 2)?, uint(0x3c, 2)?),
        _ => return None,
    };
    if offset == 0 {
        return Some(0);
    }
    // A count of 0 with a table means the real count is in the first entry: at least one.
    offset.checked_add(entry_size.checked_mul(count.max(1))?)
}
