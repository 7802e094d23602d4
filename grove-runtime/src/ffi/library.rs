//! Loading a module library: open the file, check who could have written it, stage a
//! private copy, read and check its header from the copy's bytes, and only then `dlopen`
//! it; and closing it again: detach it from the host, keep it if threads still run its
//! code, and check that it really left memory.
//!
//! Everything before `dlopen` works on the staged copy's bytes: no code of the library
//! (constructors included) runs in the host until its header has said it is a grove module
//! of a known ABI, built to unwind on panic, and (on a reload) the same module as the one
//! running.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use grove::abi::{self, CreateFn, ModuleHeader, VTableRef};
use libloading::os::unix::{Library as RawLibrary, RTLD_LOCAL, RTLD_NOW};

use super::crash::CodeRanges;
use super::elf::{self, FileHeader};
use super::host_log::HostLink;
use super::mapped::Mapped;
use super::maps;
use super::staging::{StageError, Staging};
use super::threads::{self, LibraryThread, ThreadSet};
use crate::error::{Error, Result};

/// What a library's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Whether it was built with `panic = "unwind"`; `None` for a library whose SDK
    /// predates the field.
    pub panic_unwind: Option<bool>,
    /// The version of its state (`#[grove::module(version = N)]`, 1 by default); `None`
    /// for a library whose SDK predates versions.
    pub state_version: Option<u32>,
}

impl HeaderInfo {
    /// Reads the header of the module library at `path` from the file and checks it as the
    /// loader does before it opens a library: no code in the library runs. The error is
    /// the one loading it would give (not a module, an ABI this host does not speak, built
    /// with `panic = "abort"`).
    ///
    /// ```no_run
    /// let header = grove_runtime::HeaderInfo::read("target/debug/libcounter.so")?;
    /// println!("{} ({}), grove-sdk {}", header.module_name, header.type_name, header.sdk_version);
    /// # Ok::<(), grove_runtime::Error>(())
    /// ```
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::Read {
            path: path.to_owned(),
            source: Arc::new(e),
        })?;
        let cache = object::ReadCache::new(file);
        let exports = elf::inspect(&cache).map_err(|reason| Error::NotAModule {
            path: path.to_owned(),
            reason,
        })?;
        check_header(path, &exports)
    }
}

/// An opened module library: its private copy, the OS handle, and the host table handed to
/// its instances. Closed (and its copy deleted, on the staging area's thread) on drop, or with [`Library::close`] to learn
/// whether it was really unmapped.
#[derive(Debug)]
pub(crate) struct Library {
    /// `None` once closed.
    raw: Option<RawLibrary>,
    /// Freed only once the library can no longer call it (see [`Library::close`]).
    host: Option<HostLink>,
    header: HeaderInfo,
    create: CreateFn,
    /// The library's vtable, from its first `create_module`: how to detach it.
    vtable: OnceLock<VTableRef>,
    source: PathBuf,
    staged: PathBuf,
    content_hash: OnceLock<u64>,
    /// The threads alive when it was opened: none of them can be the library's.
    threads_at_load: ThreadSet,
    /// Its addresses in the crash report's table, while it is mapped.
    code: Option<CodeRanges>,
    staging: Arc<Staging>,
}

/// How a closed library left the process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unmapped {
    /// No longer mapped.
    Yes,
    /// Still mapped after `dlclose`: something pinned it (a thread-local destructor on a
    /// live thread, typically). Its memory stays until the pin is released.
    Pinned,
    /// Never closed: these threads, started while it was loaded, still run its code (a
    /// dependency's thread pool, or a thread the module did not join). Unmapping it would
    /// crash them; it stays in memory, detached from the host, for the life of the process.
    ThreadsRunning(Vec<LibraryThread>),
    /// Could not be checked (no `/proc/self/maps`), or another instance still holds it.
    Unknown,
}

/// How long `detach` waits for the library's calls into the host to finish.
const DETACH_TIMEOUT: Duration = Duration::from_millis(500);

/// What the caller asks of a library's header before it is opened (a reload: the same
/// module as the running one; an engine: a name not taken yet). Its error refuses the
/// library, before any of its code runs.
pub(crate) type Admit<'a> = &'a dyn Fn(&HeaderInfo) -> Result<()>;

/// Admits every module.
pub(crate) fn admit_any(_: &HeaderInfo) -> Result<()> {
    Ok(())
}

impl Library {
    /// Loads the library at `source` (through a symlink, the file it points to), staging
    /// its copy in `staging`, if `admit` admits its header.
    ///
    /// The file is opened once; its permissions are checked on that descriptor, and it is
    /// copied from it (in the kernel, `copy_file_range`). Everything after the copy works
    /// on a private snapshot that no build can change any more.
    pub(crate) fn load(source: &Path, staging: &Arc<Staging>, admit: Admit<'_>) -> Result<Self> {
        let read_error = |e| Error::Read {
            path: source.to_owned(),
            source: Arc::new(e),
        };
        let mut file = File::open(source).map_err(read_error)?;
        staging.check_opened(source, &file)?;
        let stem = source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let staged = staging.stage_copy(&stem, &mut file).map_err(|e| match e {
            StageError::Read(e) => read_error(e),
            StageError::Staging(e) => e,
        })?;
        match inspect_staged(source, &staged) {
            Ok(exports) => Self::open_staged(source, staged, exports, None, staging, admit),
            Err(e) => {
                let _ = std::fs::remove_file(&staged);
                Err(e)
            }
        }
    }

    /// Loads a library from `snapshot`, a private copy of the file at `source` made by the
    /// watcher from a descriptor whose metadata it holds (checked as [`Library::load`]
    /// checks its own), whose [`content_hash`](Library::content_hash) and exports it read
    /// from the copy: only the header they hold is left to check before `dlopen`.
    pub(crate) fn load_snapshot(
        source: &Path,
        snapshot: Snapshot,
        staging: &Arc<Staging>,
        admit: Admit<'_>,
    ) -> Result<Self> {
        let Snapshot {
            staged,
            hash,
            exports,
            resolved,
            metadata,
        } = snapshot;
        staging.check_metadata(source, &resolved, &metadata)?;
        let exports = exports.map_err(|reason| Error::NotAModule {
            path: source.to_owned(),
            reason,
        })?;
        Self::open_staged(
            source,
            staged.into_path(),
            exports,
            Some(hash),
            staging,
            admit,
        )
    }

    /// Checks the header read from the file, opens the staged copy and reads its exports.
    /// The copy is deleted on failure.
    fn open_staged(
        source: &Path,
        staged: PathBuf,
        exports: elf::Exports,
        hash: Option<u64>,
        staging: &Arc<Staging>,
        admit: Admit<'_>,
    ) -> Result<Self> {
        let remove_staged = |e| {
            let _ = std::fs::remove_file(&staged);
            e
        };
        let header = check_header(source, &exports)
            .and_then(|header| admit(&header).map(|()| header))
            .map_err(remove_staged)?;
        let threads_at_load = ThreadSet::now();
        // SAFETY: loading a library runs its initialisers. The file passed the checks above
        // (an ELF shared object exporting the header of the grove module expected, of a
        // known ABI, built to unwind), so it was built by grove's macro, whose library has
        // no initialisers of its own.
        let raw = unsafe { RawLibrary::open(Some(&staged), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| open_error(source, &staged, staging, e))
            .map_err(remove_staged)?;
        let create = read_exports(&raw, source, &exports).map_err(remove_staged)?;
        let code = load_base(create).map(|base| {
            let (start, end) = exports.span;
            CodeRanges::register(
                base.saturating_add(start as usize),
                base.saturating_add(end as usize),
                &header.module_name,
            )
        });
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
            host: Some(host),
            header,
            create,
            vtable: OnceLock::new(),
            source: source.to_owned(),
            staged,
            content_hash,
            threads_at_load,
            code,
            staging: Arc::clone(staging),
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

    /// A hash of what the library loads ([`super::elf::check_and_hash`]): known when the
    /// watcher read it, else computed from the staged copy on first use (only a watched
    /// module needs it), through a mapping: hashing hundreds of libraries leaves nothing
    /// on the heap.
    pub(crate) fn content_hash(&self) -> u64 {
        *self
            .content_hash
            .get_or_init(|| super::elf::file_hash(&self.staged).unwrap_or(0))
    }

    pub(crate) fn create_fn(&self) -> CreateFn {
        self.create
    }

    pub(crate) fn host_api(&self) -> *const abi::HostApi {
        self.host.as_ref().map_or(std::ptr::null(), HostLink::api)
    }

    /// Records the library's vtable (the first one seen): what detaching it goes through.
    pub(crate) fn remember_vtable(&self, vtable: VTableRef) {
        let _ = self.vtable.set(vtable);
    }

    /// Tells the library the host's log filter changed, if it can be told.
    pub(crate) fn log_interest_changed(&self) {
        if let Some(notify) = self.vtable.get().and_then(VTableRef::log_interest_changed) {
            // SAFETY: the library is open (`self` holds it) and the entry takes no input.
            unsafe { notify() };
        }
    }

    /// Closes the library, deletes its copy, and says whether it left memory.
    pub(crate) fn close(mut self) -> Unmapped {
        self.close_inner()
    }

    /// Detaches the library from the host, then unmaps it unless threads still run its
    /// code. The host's table is freed only when the library can no longer reach it:
    /// detached with no call under way, or unmapped.
    fn close_inner(&mut self) -> Unmapped {
        let Some(raw) = self.raw.take() else {
            return Unmapped::Unknown;
        };
        let module = self.header.module_name.clone();
        let detached = match self.vtable.get().and_then(VTableRef::detach) {
            Some(detach) => {
                // SAFETY: the library is open; `detach` only clears the library's own
                // pointer to the host and waits for its calls into it.
                let drained = unsafe { detach(DETACH_TIMEOUT.as_nanos() as u64) };
                drained == 1
            }
            None => false,
        };
        if !detached && self.vtable.get().is_some_and(|v| v.detach().is_some()) {
            tracing::warn!(module = %module, "a thread of the old library is still inside a call into the host after 500 ms; its host table is kept");
        }
        let running = threads::running_in(&self.staged, &self.threads_at_load);
        let unmapped = if running.is_empty() {
            // Its addresses are about to be someone else's.
            drop(self.code.take());
            if let Err(e) = raw.close() {
                tracing::warn!(module = %module, error = %e, "dlclose failed");
            }
            match maps::is_mapped(&self.staged) {
                Some(false) => Unmapped::Yes,
                Some(true) => Unmapped::Pinned,
                None => Unmapped::Unknown,
            }
        } else {
            // Never unmapped: its code is still running, and a crash in it is still its.
            std::mem::forget(raw);
            std::mem::forget(self.code.take());
            Unmapped::ThreadsRunning(running)
        };
        match &unmapped {
            Unmapped::Pinned => tracing::warn!(
                module = %module,
                library = %self.staged.display(),
                "old library is still mapped after dlclose: a thread-local with a destructor \
                 (the module's own, or std's: starting a thread from a call into the module \
                 registers one), used on a host thread that is still alive, pins it; its \
                 memory is held until that thread exits"
            ),
            Unmapped::ThreadsRunning(running) => tracing::warn!(
                module = %module,
                library = %self.staged.display(),
                threads = running.len(),
                names = %thread_list(running),
                "old library kept in memory: threads it started still run its code (a \
                 dependency's thread pool, or a thread not joined in Drop); it is detached \
                 from the host and stays mapped for the life of the process"
            ),
            _ => {}
        }
        if unmapped != Unmapped::Yes && !detached {
            // Its code may still call the host through this table: keep it for good.
            if let Some(host) = self.host.take() {
                std::mem::forget(host);
            }
        }
        // Unlinking megabytes takes a while: not on the caller's thread (the frame's, on a
        // reload).
        self.staging.remove_later(self.staged.clone());
        unmapped
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        self.close_inner();
    }
}

/// Reads the exports of the staged copy at `staged` of the library at `source`, through a
/// mapping of the copy.
fn inspect_staged(source: &Path, staged: &Path) -> Result<elf::Exports> {
    let staging_error = |e| Error::Staging {
        path: staged.to_owned(),
        source: Arc::new(e),
    };
    let copy = File::open(staged).map_err(staging_error)?;
    let mapped = Mapped::staged(&copy).map_err(staging_error)?;
    elf::inspect(mapped.bytes()).map_err(|reason| Error::NotAModule {
        path: source.to_owned(),
        reason,
    })
}

/// What the watcher took of a new library: its private copy in the staging area, the
/// copy's hash and exports (read from the copy), the file it came from and that file's
/// metadata, from the descriptor it was copied through.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// Deleted if the snapshot is dropped unused.
    pub(crate) staged: super::staging::StagedFile,
    pub(crate) hash: u64,
    /// What [`elf::inspect`] found in the copy, or why it is not a module.
    pub(crate) exports: std::result::Result<elf::Exports, String>,
    pub(crate) resolved: PathBuf,
    pub(crate) metadata: std::fs::Metadata,
}

fn thread_list(threads: &[LibraryThread]) -> String {
    threads
        .iter()
        .map(|t| {
            let name = if t.name.is_empty() {
                "unnamed"
            } else {
                &t.name
            };
            format!("{name} (tid {})", t.tid)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the header read from the file: magic, ABI version, size, panic strategy.
/// Nothing of the library has run yet.
fn check_header(source: &Path, exports: &elf::Exports) -> Result<HeaderInfo> {
    let header: &FileHeader = &exports.header;
    let not_a_module = |reason: String| Error::NotAModule {
        path: source.to_owned(),
        reason,
    };
    if header.magic != abi::MAGIC {
        return Err(not_a_module(format!(
            "its header `{}` has the wrong magic {:02x?}: it was not built by grove's macro",
            exports.header_symbol, header.magic
        )));
    }
    let symbol_name = || {
        exports
            .header_symbol
            .trim_start_matches(abi::HEADER_SYMBOL_PREFIX)
            .to_owned()
    };
    if !(abi::MIN_ABI_VERSION..=abi::ABI_VERSION).contains(&header.abi_version) {
        return Err(Error::AbiMismatch {
            path: source.to_owned(),
            module: header.module_name.clone().unwrap_or_else(symbol_name),
            found: header.abi_version,
            min: abi::MIN_ABI_VERSION,
            max: abi::ABI_VERSION,
            module_sdk: header.sdk_version.clone(),
            host_sdk: abi::SDK_VERSION.to_owned(),
        });
    }
    if (header.header_size as usize) < abi::HEADER_MIN_SIZE_V1 {
        return Err(not_a_module(format!(
            "its header is {} bytes, shorter than ABI version {}'s {}",
            header.header_size,
            header.abi_version,
            abi::HEADER_MIN_SIZE_V1
        )));
    }
    let text = |value: &Option<String>, what: &str| {
        value.clone().ok_or_else(|| {
            not_a_module(format!("its header's {what} cannot be read from the file"))
        })
    };
    let info = HeaderInfo {
        module_name: text(&header.module_name, "module name")?,
        type_name: text(&header.type_name, "type name")?,
        abi_version: header.abi_version,
        sdk_version: text(&header.sdk_version, "SDK version")?,
        rustc_version: text(&header.rustc_version, "rustc version")?,
        panic_unwind: match header.panic_strategy {
            abi::PANIC_UNWIND => Some(true),
            abi::PANIC_ABORT => Some(false),
            _ => None,
        },
        state_version: (header.state_version != 0).then_some(header.state_version),
    };
    if info.panic_unwind == Some(false) {
        return Err(Error::PanicAbort {
            path: source.to_owned(),
            module: info.module_name,
        });
    }
    Ok(info)
}

/// The error for a `dlopen` that failed, with the loader's own words and what they mean.
fn open_error(source: &Path, staged: &Path, staging: &Staging, error: libloading::Error) -> Error {
    let said = std::error::Error::source(&error)
        .map(ToString::to_string)
        .unwrap_or_else(|| error.to_string());
    let advice = if said.contains("wrong ELF class") || said.contains("ELF file's") {
        "it was built for another architecture or word size than this host: build the module \
         crate for the host's target"
            .to_owned()
    } else if said.contains("failed to map segment") || said.contains("Operation not permitted") {
        format!(
            "the staging directory {} is probably on a filesystem mounted `noexec`, where no \
             library can run: stage elsewhere with `EngineBuilder::staging(Arc::new(\
             Staging::new_in(dir)?))`, or set TMPDIR to a directory on another filesystem",
            staging.path().display()
        )
    } else if said.contains("cannot open shared object file") {
        "a library it links against is missing: install it, or build the module without it"
            .to_owned()
    } else if said.contains("undefined symbol") {
        "it needs a symbol this process does not provide: it was probably linked for another \
         host, or against a library this process did not load"
            .to_owned()
    } else {
        "the dynamic loader refused it".to_owned()
    };
    Error::Open {
        path: source.to_owned(),
        staged: staged.to_owned(),
        reason: format!("{said}; {advice}"),
        source: Arc::new(error),
    }
}

/// Where the library holding `create` is loaded (what its segments' addresses are relative
/// to), from the dynamic loader.
fn load_base(create: CreateFn) -> Option<usize> {
    // SAFETY: a zeroed `Dl_info` is valid; `dladdr` only fills it in, for an address of a
    // library that is open.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let found = unsafe { libc::dladdr(create as *const libc::c_void, &mut info) };
    (found != 0 && !info.dli_fbase.is_null()).then_some(info.dli_fbase as usize)
}

/// Resolves `create_module`, after checking the header in memory says what the file said.
fn read_exports(raw: &RawLibrary, source: &Path, exports: &elf::Exports) -> Result<CreateFn> {
    let not_a_module = |reason: String| Error::NotAModule {
        path: source.to_owned(),
        reason,
    };
    // SAFETY: the symbol is a `ModuleHeader` static: `elf::inspect` found it exported under
    // grove's header name with a version 1 header's size at least; only its fixed prefix
    // is read.
    let header: *const ModuleHeader =
        unsafe { raw.get::<*const ModuleHeader>(exports.header_symbol.as_bytes()) }
            .map(|symbol| *symbol)
            .map_err(|e| not_a_module(format!("its header symbol cannot be resolved: {e}")))?;
    // SAFETY: as above: magic and ABI version are the header's first 12 bytes.
    let (magic, abi_version) = unsafe {
        (
            header
                .byte_add(ModuleHeader::MAGIC_AT)
                .cast::<[u8; 8]>()
                .read(),
            header
                .byte_add(ModuleHeader::ABI_VERSION_AT)
                .cast::<u32>()
                .read(),
        )
    };
    if magic != exports.header.magic || abi_version != exports.header.abi_version {
        return Err(not_a_module(
            "its header in memory differs from the one in the file".into(),
        ));
    }
    // SAFETY: `elf::inspect` found this symbol exported under grove's create name next to
    // a valid header, so it is the macro's `create_module`, of type `CreateFn`.
    unsafe { raw.get::<CreateFn>(exports.create_symbol.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| not_a_module(format!("its create_module cannot be resolved: {e}")))
}
