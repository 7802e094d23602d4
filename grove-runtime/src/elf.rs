//! Reading a library file before it is opened: is it a complete ELF shared object, does it
//! export a grove module, and which ABI does its header speak?
//!
//! All of this works on the file's bytes; no code in the library runs (`dlopen` would run
//! its constructors). A file still being written fails here, which is what lets the watcher
//! tell a complete library from a partial one. It reads only what it needs (the ELF
//! header, the section table, the dynamic symbols and 16 bytes of the module header), so
//! inspecting a file through a [`object::ReadCache`] costs a few kilobytes of reads.

use grove::abi;
use object::{Object, ObjectKind, ObjectSection, ObjectSymbol, ReadRef};

/// What the file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exports {
    /// Name of the exported header symbol.
    pub(crate) header_symbol: String,
    /// Name of the exported `create_module` symbol.
    pub(crate) create_symbol: String,
    /// The header's magic, ABI version and size, read from the file when its section has
    /// file data (it always does for a grove-built library).
    pub(crate) header_prefix: Option<HeaderPrefix>,
}

/// The fixed-layout start of a [`abi::ModuleHeader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderPrefix {
    pub(crate) magic: [u8; 8],
    pub(crate) abi_version: u32,
    pub(crate) header_size: u32,
}

const PREFIX_LEN: usize = 16;

/// Checks that `bytes` is a complete ELF shared library: it parses, and every section lies
/// inside the file. A file still being written, or cut short, fails. No grove specifics:
/// the watcher uses this to decide when a file is ready to be tried.
pub(crate) fn check_complete(bytes: &[u8]) -> Result<(), String> {
    parse_complete(bytes).map(drop)
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
    let header_prefix = header
        .section_index()
        .and_then(|index| file.section_by_index(index).ok())
        .and_then(|section| {
            let (section_offset, _) = section.file_range()?;
            let offset = section_offset + header.address().checked_sub(section.address())?;
            let bytes = data.read_bytes_at(offset, PREFIX_LEN as u64).ok()?;
            Some(HeaderPrefix {
                magic: bytes[0..8].try_into().ok()?,
                abi_version: file_u32(&file, &bytes[8..12]),
                header_size: file_u32(&file, &bytes[12..16]),
            })
        });
    Ok(Exports {
        header_symbol: format!("{}{suffix}", abi::HEADER_SYMBOL_PREFIX),
        create_symbol: format!("{}{suffix}", abi::CREATE_SYMBOL_PREFIX),
        header_prefix,
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
