//! [`Mapped`]: a staged library file mapped read-only, so that inspecting it before
//! `dlopen` reads its headers, symbols and relocations straight from the page cache (the
//! copy just wrote them there) instead of one system call per read.

use std::fs::File;
use std::os::fd::AsRawFd;

/// A read-only private mapping of a whole file.
#[derive(Debug)]
pub(crate) struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    /// Maps `file`, a staged copy: a file this process created (`O_EXCL`, in a directory
    /// only this user can enter) and does not change while the mapping lives.
    pub(crate) fn staged(file: &File) -> std::io::Result<Self> {
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| std::io::Error::other("file too large to map"))?;
        if len == 0 {
            return Ok(Self {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a fresh read-only private mapping of `len` bytes of an open file; the
        // kernel picks the address. Nothing else is touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { ptr, len })
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr..ptr+len` is mapped readable for as long as `self` lives; the file
        // is a staged copy nobody writes or truncates (see `staged`), so the bytes do not
        // change under the slice.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: unmaps exactly the mapping `staged` made; no slice of it outlives
            // `self` (`bytes` borrows it).
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}
