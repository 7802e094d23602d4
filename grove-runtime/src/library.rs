//! Loading a module library: read, check, stage a private copy, `dlopen` it, check its
//! header; and closing it again, checking that it is really gone.
//!
//! The file is read once; everything after works on that snapshot, so a build that
//! rewrites the file meanwhile cannot mix two versions. The header's magic and ABI version
//! are checked from the file's bytes before `dlopen` (which would run the library's
//! constructors), then again in memory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use grove::abi::{self, CreateFn, ModuleHeader};
use libloading::os::unix::{Library as RawLibrary, RTLD_LOCAL, RTLD_NOW};

use crate::elf;
use crate::error::{Error, Result};
use crate::host_log::HostLink;
use crate::maps;
use crate::staging::{StageError, Staging};

/// What a library's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderInfo {
    /// The module's name.
    pub module_name: String,
    /// The Rust type the module was declared on.
    pub type_name: String,
    /// The library's ABI version.
    pub abi_version: u32,
    /// The grove-sdk version it was built with.
    pub sdk_version: String,
    /// The rustc that built it.
    pub rustc_version: String,
}

/// An opened module library: its private copy, the OS handle, and the host table handed to
/// its instances. Closed (and its copy deleted) on drop, or with [`Library::close`] to learn
/// whether it was really unmapped.
#[derive(Debug)]
pub(crate) struct Library {
    /// `None` once closed. Declared first: closed before `host` is freed.
    raw: Option<RawLibrary>,
    host: HostLink,
    header: HeaderInfo,
    create: CreateFn,
    source: PathBuf,
    staged: PathBuf,
    content_hash: OnceLock<u64>,
    _staging: Arc<Staging>,
}

/// How a closed library left the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmapped {
    /// No longer mapped.
    Yes,
    /// Still mapped after `dlclose`: something pinned it (a thread-local destructor on a
    /// live thread, typically). Its memory stays until the pin is released.
    Pinned,
    /// Could not be checked (no `/proc/self/maps`).
    Unknown,
}

impl Library {
    /// Loads the library at `source`, staging its copy in `staging`.
    ///
    /// The file is copied first (in the kernel, as `copy_file_range`), then the copy is
    /// inspected and opened: everything after the copy works on a private snapshot that no
    /// build can change any more.
    pub(crate) fn load(source: &Path, staging: &Arc<Staging>) -> Result<Self> {
        staging.check_source(source)?;
        let read_error = |e| Error::Read {
            path: source.to_owned(),
            source: Arc::new(e),
        };
        let mut file = std::fs::File::open(source).map_err(read_error)?;
        let stem = source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let staged = staging.stage_copy(&stem, &mut file).map_err(|e| match e {
            StageError::Read(e) => read_error(e),
            StageError::Staging(e) => e,
        })?;
        let inspected = std::fs::File::open(&staged)
            .map_err(|e| Error::Staging {
                path: staged.clone(),
                source: Arc::new(e),
            })
            .and_then(|copy| {
                elf::inspect(&object::ReadCache::new(copy)).map_err(|reason| Error::NotAModule {
                    path: source.to_owned(),
                    reason,
                })
            });
        match inspected {
            Ok(exports) => Self::open_staged(source, staged, &exports, None, staging),
            Err(e) => {
                let _ = std::fs::remove_file(&staged);
                Err(e)
            }
        }
    }

    /// Loads a library from `bytes`, a snapshot of the file at `source` (read by the
    /// watcher), whose [`content_hash`](Library::content_hash) is `hash`.
    pub(crate) fn load_bytes(
        source: &Path,
        bytes: Vec<u8>,
        hash: u64,
        staging: &Arc<Staging>,
    ) -> Result<Self> {
        staging.check_source(source)?;
        let exports = elf::inspect(bytes.as_slice()).map_err(|reason| Error::NotAModule {
            path: source.to_owned(),
            reason,
        })?;
        let stem = exports
            .header_symbol
            .trim_start_matches(abi::HEADER_SYMBOL_PREFIX)
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
        let staged = staging.stage(&stem, &bytes)?;
        drop(bytes);
        Self::open_staged(source, staged, &exports, Some(hash), staging)
    }

    /// Checks the header, opens the staged copy and reads its exports. The copy is deleted
    /// on failure.
    fn open_staged(
        source: &Path,
        staged: PathBuf,
        exports: &elf::Exports,
        hash: Option<u64>,
        staging: &Arc<Staging>,
    ) -> Result<Self> {
        let remove_staged = |e| {
            let _ = std::fs::remove_file(&staged);
            e
        };
        if let Some(prefix) = exports.header_prefix {
            check_prefix(source, exports, prefix.magic, prefix.abi_version, None)
                .map_err(remove_staged)?;
        }
        // SAFETY: loading a library runs its initialisers. The file passed the checks above
        // (an ELF shared object exporting a grove header with the right magic and ABI), so
        // it was built by grove's macro, whose library has no initialisers of its own.
        let raw = unsafe { RawLibrary::open(Some(&staged), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| Error::Open {
                path: source.to_owned(),
                source: Arc::new(e),
            })
            .map_err(remove_staged)?;
        let (header, create) = read_exports(&raw, source, exports).map_err(remove_staged)?;
        let host = HostLink::new(&header.module_name);
        tracing::debug!(
            module = %header.module_name,
            path = %source.display(),
            staged = %staged.display(),
            sdk = %header.sdk_version,
            rustc = %header.rustc_version,
            "library opened"
        );
        let content_hash = OnceLock::new();
        if let Some(hash) = hash {
            let _ = content_hash.set(hash);
        }
        Ok(Self {
            raw: Some(raw),
            host,
            header,
            create,
            source: source.to_owned(),
            staged,
            content_hash,
            _staging: Arc::clone(staging),
        })
    }

    pub(crate) fn header(&self) -> &HeaderInfo {
        &self.header
    }

    pub(crate) fn name(&self) -> &str {
        &self.header.module_name
    }

    pub(crate) fn source(&self) -> &Path {
        &self.source
    }

    /// A hash of the library's content: known when the watcher read it, else computed from
    /// the staged copy on first use (only a watched module needs it).
    pub(crate) fn content_hash(&self) -> u64 {
        *self.content_hash.get_or_init(|| {
            std::fs::read(&self.staged).map_or(0, |bytes| xxhash_rust::xxh3::xxh3_64(&bytes))
        })
    }

    pub(crate) fn create_fn(&self) -> CreateFn {
        self.create
    }

    pub(crate) fn host_api(&self) -> *const abi::HostApi {
        self.host.api()
    }

    /// Closes the library, deletes its copy, and says whether it left memory.
    pub(crate) fn close(mut self) -> Unmapped {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Unmapped {
        let Some(raw) = self.raw.take() else {
            return Unmapped::Unknown;
        };
        if let Err(e) = raw.close() {
            tracing::warn!(module = %self.header.module_name, error = %e, "dlclose failed");
        }
        let unmapped = match maps::is_mapped(&self.staged) {
            Some(false) => Unmapped::Yes,
            Some(true) => Unmapped::Pinned,
            None => Unmapped::Unknown,
        };
        if unmapped == Unmapped::Pinned {
            tracing::warn!(
                module = %self.header.module_name,
                library = %self.staged.display(),
                "old library is still mapped after dlclose: something pinned it (a \
                 thread_local! with a destructor used on a live thread is the usual cause); \
                 its memory is held until that thread exits"
            );
        }
        let _ = std::fs::remove_file(&self.staged);
        unmapped
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        self.close_inner();
    }
}

/// Checks the header's magic and ABI version (from the file, then from memory).
fn check_prefix(
    source: &Path,
    exports: &elf::Exports,
    magic: [u8; 8],
    abi_version: u32,
    names: Option<(&str, &str)>,
) -> Result<()> {
    if magic != abi::MAGIC {
        return Err(Error::NotAModule {
            path: source.to_owned(),
            reason: format!(
                "its header `{}` has the wrong magic {magic:02x?}: it was not built by grove's macro",
                exports.header_symbol
            ),
        });
    }
    if !(abi::MIN_ABI_VERSION..=abi::ABI_VERSION).contains(&abi_version) {
        let (module, sdk) = names.unwrap_or(("?", "unknown"));
        let module = if module == "?" {
            exports
                .header_symbol
                .trim_start_matches(abi::HEADER_SYMBOL_PREFIX)
                .to_owned()
        } else {
            module.to_owned()
        };
        return Err(Error::AbiMismatch {
            path: source.to_owned(),
            module,
            found: abi_version,
            min: abi::MIN_ABI_VERSION,
            max: abi::ABI_VERSION,
            module_sdk: sdk.to_owned(),
            host_sdk: grove_sdk_version().to_owned(),
        });
    }
    Ok(())
}

/// The grove-sdk version this host was built with.
fn grove_sdk_version() -> &'static str {
    // SAFETY: `header` builds a header of static strings only.
    unsafe { grove::__private::header("", "").sdk_version.as_str() }.unwrap_or("unknown")
}

fn read_exports(
    raw: &RawLibrary,
    source: &Path,
    exports: &elf::Exports,
) -> Result<(HeaderInfo, CreateFn)> {
    let not_a_module = |reason: String| Error::NotAModule {
        path: source.to_owned(),
        reason,
    };
    // SAFETY: the symbol is a `ModuleHeader` static: `elf::inspect` found it exported under
    // grove's header name with at least the fixed prefix's size; only the prefix is read
    // before its size is checked.
    let header: *const ModuleHeader =
        unsafe { raw.get::<*const ModuleHeader>(exports.header_symbol.as_bytes()) }
            .map(|symbol| *symbol)
            .map_err(|e| not_a_module(format!("its header symbol cannot be resolved: {e}")))?;
    // SAFETY: as above: magic and ABI version are the header's first 12 bytes.
    let (magic, abi_version, header_size) = unsafe {
        (
            (*header).magic,
            (*header).abi_version,
            (*header).header_size,
        )
    };
    check_prefix(source, exports, magic, abi_version, None)?;
    if (header_size as usize) < size_of::<ModuleHeader>() {
        return Err(not_a_module(format!(
            "its header is {header_size} bytes, shorter than ABI version {abi_version}'s {}",
            size_of::<ModuleHeader>()
        )));
    }
    // SAFETY: the header has the full size of this ABI version's `ModuleHeader`, and its
    // strings point into the library's static data, valid while the library is open.
    let header = unsafe { &*header };
    let text = |field: &abi::RawBytes, what: &str| {
        // SAFETY: as above.
        unsafe { field.as_str() }
            .map(str::to_owned)
            .ok_or_else(|| not_a_module(format!("its header's {what} is not UTF-8")))
    };
    let info = HeaderInfo {
        module_name: text(&header.module_name, "module name")?,
        type_name: text(&header.type_name, "type name")?,
        abi_version,
        sdk_version: text(&header.sdk_version, "SDK version")?,
        rustc_version: text(&header.rustc_version, "rustc version")?,
    };
    // SAFETY: `elf::inspect` found this symbol exported under grove's create name next to
    // a valid header, so it is the macro's `create_module`, of type `CreateFn`.
    let create = unsafe { raw.get::<CreateFn>(exports.create_symbol.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| not_a_module(format!("its create_module cannot be resolved: {e}")))?;
    Ok((info, create))
}
