//! Reading a library file before it is opened: is it a complete ELF shared object, does it
//! export a grove module, and which ABI does its header speak?
//!
//! All of this works on the file's bytes; no code in the library runs (`dlopen` would run
//! its constructors). A file still being written fails here, which is what lets the watcher
//! tell a complete library from a partial one. It reads only what it needs (the ELF
//! header, the section table, the dynamic symbols and 16 bytes of the module header), so
//! inspecting a file through a [`object::ReadCache`] costs a few kilobytes of reads.

use grove::abi;
use object::{Object, ObjectKind, ObjectSection, ObjectSegment, ObjectSymbol, ReadRef};

/// What the file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exports {
    /// Name of the exported header symbol.
    pub(crate) header_symbol: String,
    /// Name of the exported `create_module` symbol.
    pub(crate) create_symbol: String,
    /// The header, read from the file.
    pub(crate) header: FileHeader,
    /// The addresses its loadable segments span, relative to where it is loaded.
    pub(crate) span: (u64, u64),
}

/// A [`abi::ModuleHeader`] as read from the file, before the library is opened. The
/// strings are `None` when they could not be read (a header of the wrong magic or ABI
/// version is still returned, so that the error can say what it found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileHeader {
    pub(crate) magic: [u8; 8],
    pub(crate) abi_version: u32,
    pub(crate) header_size: u32,
    pub(crate) module_name: Option<String>,
    pub(crate) type_name: Option<String>,
    pub(crate) sdk_version: Option<String>,
    pub(crate) rustc_version: Option<String>,
    /// One of `abi::PANIC_*`; `PANIC_UNKNOWN` for a header from before the field.
    pub(crate) panic_strategy: u32,
    /// The state's version; 0 for a header from before versions.
    pub(crate) state_version: u32,
}

/// The fixed part every header has: magic, ABI version and size.
const PREFIX_LEN: usize = 16;

/// The longest header string read (a module or type name, a version).
const MAX_TEXT: u64 = 4096;

/// Checks that `bytes` is a complete ELF shared library (it parses, and every section lies
/// inside the file: a file still being written, or cut short, fails; no grove specifics:
/// the watcher uses this to decide when a file is ready to be tried), and returns the
/// identity of the code and data the library would load:
/// a hash of its loadable segments (where they lie in the file, and their bytes). Two
/// builds that differ only in what is not loaded (debug info) are the same library to
/// run; every other difference (the build id the linker computes over the whole file
/// included, which sits in a loaded segment) makes them differ. A debug build's library
/// is mostly debug info, so this reads a fraction of the file: for a 15 MB debug library,
/// about 2 MB.
pub(crate) fn check_and_hash(bytes: &[u8]) -> Result<u64, String> {
    let file = parse_complete(bytes)?;
    hash_segments(&file, bytes)
}

/// [`check_and_hash`] and [`inspect`] from one parse of `bytes`, the whole library file:
/// what the watcher does with a new version, so that the frame thread that loads it has
/// only the header to check. The outer error is [`check_and_hash`]'s (not a complete
/// library yet); the inner one, [`inspect`]'s (a complete library, but not a module the
/// loader would take).
pub(crate) fn check_hash_inspect(bytes: &[u8]) -> Result<(u64, Result<Exports, String>), String> {
    let file = parse_complete(bytes)?;
    let hash = hash_segments(&file, bytes)?;
    Ok((hash, inspect_parsed(&file, bytes)))
}

/// The identity of the code and data `file` (parsed from `bytes`) would load: see
/// [`check_and_hash`].
fn hash_segments<'data>(
    file: &object::File<'data, &'data [u8]>,
    bytes: &'data [u8],
) -> Result<u64, String> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut segments = 0;
    for segment in file.segments() {
        let (offset, size) = segment.file_range();
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(usize::try_from(size).ok()?)?));
        let Some(bytes_of) = range.and_then(|range| bytes.get(range)) else {
            return Err(format!(
                "a loadable segment lies outside the file (bytes {offset}..{} of {}): a \
                 truncated or unfinished build",
                offset.saturating_add(size),
                bytes.len()
            ));
        };
        hasher.update(&offset.to_le_bytes());
        hasher.update(&size.to_le_bytes());
        hasher.update(bytes_of);
        segments += 1;
    }
    if segments == 0 {
        // Nothing is loaded from it (dlopen will say why): the whole file stands for it.
        return Ok(xxhash_rust::xxh3::xxh3_64(bytes));
    }
    Ok(hasher.digest())
}

/// [`check_and_hash`]'s identity of the library file at `path`, read through a mapping;
/// `None` when it cannot be read or is not a complete library.
pub(crate) fn file_hash(path: &std::path::Path) -> Option<u64> {
    let file = std::fs::File::open(path).ok()?;
    let mapped = super::mapped::Mapped::staged(&file).ok()?;
    check_and_hash(mapped.bytes()).ok()
}

fn parse_complete<'data, R: ReadRef<'data>>(data: R) -> Result<object::File<'data, R>, String> {
    let len = data.len().unwrap_or(0);
    if len == 0 {
        return Err("the file is empty (a build still writing it, or a failed one)".into());
    }
    let file = object::File::parse(data).map_err(|e| {
        format!("not a complete ELF file ({e}): a truncated or unfinished build, or another kind of file")
    })?;
    if file.kind() != ObjectKind::Dynamic {
        return Err(format!(
            "an ELF {:?} file, not a shared library: build the module crate with \
             `crate-type = [\"cdylib\", \"rlib\"]`",
            file.kind()
        ));
    }
    // Every section must lie inside the file: a truncated write cuts the last ones (and
    // usually the section table, which `parse` already checked).
    for section in file.sections() {
        if let Some((offset, size)) = section.file_range()
            && offset.checked_add(size).is_none_or(|end| end > len)
        {
            return Err(format!(
                "section {} lies outside the file (bytes {offset}..{} of {len}): a truncated \
                 or unfinished build",
                section.name().unwrap_or("?"),
                offset.saturating_add(size),
            ));
        }
    }
    Ok(file)
}

/// Inspects `data`, the whole library file. The error says what is wrong, for a user.
pub(crate) fn inspect<'data, R: ReadRef<'data>>(data: R) -> Result<Exports, String> {
    let file = parse_complete(data)?;
    inspect_parsed(&file, data)
}

/// [`inspect`] of `file`, parsed from `data`.
fn inspect_parsed<'data, R: ReadRef<'data>>(
    file: &object::File<'data, R>,
    data: R,
) -> Result<Exports, String> {
    let mut headers = Vec::new();
    let mut creates = Vec::new();
    for symbol in file.dynamic_symbols() {
        let Ok(name) = symbol.name() else { continue };
        if !symbol.is_definition() {
            continue;
        }
        if let Some(suffix) = name.strip_prefix(abi::HEADER_SYMBOL_PREFIX) {
            headers.push((suffix.to_owned(), symbol));
        } else if let Some(suffix) = name.strip_prefix(abi::CREATE_SYMBOL_PREFIX) {
            creates.push(suffix.to_owned());
        }
    }
    let (suffix, header) = match headers.len() {
        0 => {
            return Err(
                "it exports no grove module: mark a struct `#[grove::module]` in the crate \
                 and build it as a cdylib"
                    .into(),
            );
        }
        1 => headers.remove(0),
        n => {
            let names: Vec<_> = headers.iter().map(|(s, _)| s.as_str()).collect();
            return Err(format!(
                "it exports {n} grove modules ({}): a library holds one module; split them into crates",
                names.join(", ")
            ));
        }
    };
    if !creates.contains(&suffix) {
        return Err(format!(
            "it exports a grove header for `{suffix}` but no matching `create_module`: \
             the library was not built by grove's macro"
        ));
    }
    if (header.size() as usize) < PREFIX_LEN {
        return Err(format!(
            "its grove header is {} bytes, too small to be one",
            header.size()
        ));
    }
    let header = read_header(file, data, header.address(), header.size())
        .ok_or_else(|| "its grove header cannot be read from the file".to_owned())?;
    let span = file
        .segments()
        .map(|segment| (segment.address(), segment.address() + segment.size()))
        .fold((u64::MAX, 0), |(lo, hi), (start, end)| {
            (lo.min(start), hi.max(end))
        });
    Ok(Exports {
        header_symbol: format!("{}{suffix}", abi::HEADER_SYMBOL_PREFIX),
        create_symbol: format!("{}{suffix}", abi::CREATE_SYMBOL_PREFIX),
        header,
        span,
    })
}

/// Reads the header at virtual address `at` (`size` bytes) from the file. Its strings are
/// pointers the dynamic loader would relocate: their values come from the file's relative
/// relocations (RELA addends), or from the place itself (RELR, or no relocation).
fn read_header<'data, R: ReadRef<'data>>(
    file: &object::File<'data, R>,
    data: R,
    at: u64,
    size: u64,
) -> Option<FileHeader> {
    use abi::ModuleHeader as H;
    let read = |address: u64, len: u64| read_at_address(file, data, address, len);
    // The whole header in one read: every read through the cache is a system call.
    let bytes = read(at, size).or_else(|| read(at, PREFIX_LEN as u64))?;
    let u32_at =
        |offset: usize| -> Option<u32> { Some(file_u32(file, bytes.get(offset..offset + 4)?)) };
    let mut header = FileHeader {
        magic: bytes.get(H::MAGIC_AT..H::MAGIC_AT + 8)?.try_into().ok()?,
        abi_version: u32_at(H::ABI_VERSION_AT)?,
        header_size: u32_at(H::HEADER_SIZE_AT)?,
        module_name: None,
        type_name: None,
        sdk_version: None,
        rustc_version: None,
        panic_strategy: abi::PANIC_UNKNOWN,
        state_version: 0,
    };
    if header.magic != abi::MAGIC || (header.header_size as usize) < abi::HEADER_MIN_SIZE_V1 {
        return Some(header);
    }
    let size = (bytes.len() as u64).min(u64::from(header.header_size));
    let addends = relative_addends(file, at, size);
    let word = |offset: usize| -> Option<u64> {
        let value = u64::from_le_bytes(bytes.get(offset..offset + 8)?.try_into().ok()?);
        Some(if file.is_little_endian() {
            value
        } else {
            value.swap_bytes()
        })
    };
    // Where each string is: (address, length).
    let span_of = |offset: usize| -> Option<(u64, u64)> {
        let slot = at + (offset + H::BYTES_PTR_AT) as u64;
        let pointer = match addends.iter().find(|(place, _)| *place == slot) {
            Some((_, addend)) => *addend,
            None => word(offset + H::BYTES_PTR_AT)?,
        };
        let len = word(offset + H::BYTES_LEN_AT)?;
        (len <= MAX_TEXT).then_some((pointer, len))
    };
    let fields = [
        H::SDK_VERSION_AT,
        H::RUSTC_VERSION_AT,
        H::MODULE_NAME_AT,
        H::TYPE_NAME_AT,
    ];
    let spans = fields.map(span_of);
    // The strings sit together in the read-only data: one read for all, when they do.
    let start = spans.iter().flatten().map(|(p, _)| *p).min();
    let end = spans.iter().flatten().map(|(p, l)| p + l).max();
    let together = match (start, end) {
        (Some(start), Some(end)) if end - start <= 4 * MAX_TEXT => {
            read(start, end - start).map(|bytes| (start, bytes))
        }
        _ => None,
    };
    let text = |span: Option<(u64, u64)>| -> Option<String> {
        let (pointer, len) = span?;
        if len == 0 {
            return Some(String::new());
        }
        let bytes = match together {
            Some((start, bytes)) => {
                let from = usize::try_from(pointer - start).ok()?;
                bytes.get(from..from + usize::try_from(len).ok()?)?
            }
            None => read(pointer, len)?,
        };
        String::from_utf8(bytes.to_vec()).ok()
    };
    let [sdk, rustc, module, type_name] = spans;
    header.sdk_version = text(sdk);
    header.rustc_version = text(rustc);
    header.module_name = text(module);
    header.type_name = text(type_name);
    if size >= (H::PANIC_STRATEGY_AT + 4) as u64 {
        header.panic_strategy = u32_at(H::PANIC_STRATEGY_AT)?;
    }
    if size >= (H::STATE_VERSION_AT + 4) as u64 {
        header.state_version = u32_at(H::STATE_VERSION_AT)?;
    }
    Some(header)
}

/// The addends of the relative relocations that land in `at..at + size`.
fn relative_addends<'data, R: ReadRef<'data>>(
    file: &object::File<'data, R>,
    at: u64,
    size: u64,
) -> Vec<(u64, u64)> {
    // The common case, read raw: a 64-bit little-endian `.rela.dyn` is an array of
    // (offset, info, addend) triples, scanned in one pass over its bytes (object's
    // relocation iterator costs ~40 us for a thousand entries through a read cache).
    if file.is_64()
        && file.is_little_endian()
        && let Some(data) = file
            .section_by_name(".rela.dyn")
            .and_then(|section| section.data().ok())
    {
        let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        return data
            .chunks_exact(24)
            .filter_map(|entry| {
                let (place, info, addend) =
                    (word(&entry[..8]), word(&entry[8..16]), word(&entry[16..]));
                let kind = (info & 0xffff_ffff) as u32;
                // R_X86_64_RELATIVE, R_AARCH64_RELATIVE.
                let relative = kind == 8 || kind == 1027;
                (relative && (at..at + size).contains(&place)).then_some((place, addend))
            })
            .collect();
    }
    let Some(relocations) = file.dynamic_relocations() else {
        return Vec::new();
    };
    relocations
        .filter(|(place, _)| (at..at + size).contains(place))
        .filter(|(_, relocation)| {
            matches!(
                relocation.flags(),
                object::RelocationFlags::Elf {
                    r_type: object::elf::R_X86_64_RELATIVE | object::elf::R_AARCH64_RELATIVE
                }
            ) && !relocation.has_implicit_addend()
        })
        .map(|(place, relocation)| (place, relocation.addend() as u64))
        .collect()
}

/// `len` bytes at virtual address `address`, from the loaded section that holds them.
fn read_at_address<'data, R: ReadRef<'data>>(
    file: &object::File<'data, R>,
    data: R,
    address: u64,
    len: u64,
) -> Option<&'data [u8]> {
    file.sections().find_map(|section| {
        // Only sections that are loaded have addresses; the others (debug info...) start
        // at 0 and would match any address.
        // SHF_ALLOC.
        if !matches!(section.flags(), object::SectionFlags::Elf { sh_flags, .. } if sh_flags.contains(object::elf::SHF_ALLOC))
        {
            return None;
        }
        let offset = address.checked_sub(section.address())?;
        let (file_offset, file_size) = section.file_range()?;
        if offset.checked_add(len)? > file_size.min(section.size()) {
            return None;
        }
        data.read_bytes_at(file_offset + offset, len).ok()
    })
}

fn file_u32<'data, R: ReadRef<'data>>(file: &object::File<'data, R>, bytes: &[u8]) -> u32 {
    let array: [u8; 4] = bytes.try_into().unwrap_or_default();
    if file.is_little_endian() {
        u32::from_le_bytes(array)
    } else {
        u32::from_be_bytes(array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary (a position-independent executable: an ELF shared object to
    /// `object`), and the file range of its first section that `pick` chooses.
    fn own_file_and(pick: impl Fn(&object::Section<'_, '_, &[u8]>) -> bool) -> (Vec<u8>, usize) {
        let bytes = std::fs::read("/proc/self/exe").unwrap();
        let at = {
            let file = object::File::parse(&*bytes).unwrap();
            let section = file.sections().find(|s| pick(s)).expect("such a section");
            section.file_range().unwrap().0 as usize
        };
        (bytes, at)
    }

    #[test]
    fn what_is_not_loaded_does_not_change_the_identity_and_what_is_loaded_does() {
        // Debug info proper and the compiler's comment are never in a loadable segment
        // (`.debug_gdb_scripts`, despite its name, is).
        let not_loaded = |s: &object::Section<'_, '_, &[u8]>| {
            s.name()
                .is_ok_and(|n| [".debug_info", ".debug_line", ".comment"].contains(&n))
                && s.file_range().is_some_and(|(_, size)| size > 0)
        };
        let (bytes, at) = own_file_and(not_loaded);
        let hash = check_and_hash(&bytes).unwrap();
        let mut debug_changed = bytes.clone();
        debug_changed[at] ^= 0xff;
        assert_eq!(
            check_and_hash(&debug_changed).unwrap(),
            hash,
            "a change in debug info only: the same library to run"
        );

        let (bytes, at) = own_file_and(|s| s.name().is_ok_and(|n| n == ".text"));
        let mut code_changed = bytes.clone();
        code_changed[at + 16] ^= 0xff;
        assert_ne!(
            check_and_hash(&code_changed).unwrap(),
            hash,
            "a change in its code: another library"
        );
    }

    #[test]
    fn a_truncated_library_is_not_complete() {
        let bytes = std::fs::read("/proc/self/exe").unwrap();
        let error = check_and_hash(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(
            error.contains("truncated") || error.contains("not a complete ELF"),
            "{error}"
        );
        assert_eq!(
            check_hash_inspect(&bytes[..bytes.len() / 2]).unwrap_err(),
            error
        );
    }

    #[test]
    fn one_parse_finds_what_the_hash_and_the_inspection_find_apart() {
        // The test executable: a complete ELF file, but not a shared library.
        let bytes = std::fs::read("/proc/self/exe").unwrap();
        assert_eq!(
            check_hash_inspect(&bytes).map(|(hash, exports)| (hash, exports.err())),
            check_and_hash(&bytes).map(|hash| (hash, inspect(&*bytes).err()))
        );
    }
}
