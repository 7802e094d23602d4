//! How big a stack the threads that run modules get.
//!
//! A module is written and tried under whatever system the host picked, often
//! [`Sequential`](super::Sequential), on the host's main thread, whose stack the kernel
//! sizes from the `RLIMIT_STACK` soft limit (8 MiB on most systems). A thread started by
//! `std` gets 2 MiB. So a module that recurses a few MiB deep works in sequence and aborts
//! the whole process ("has overflowed its stack") once moved to
//! [`Threaded`](super::Threaded) or [`Pool`](super::Pool). Their threads therefore get the
//! main thread's stack size unless told otherwise: moving a module between systems must
//! not change how deep it may go. The memory is reserved, not used: a thread's stack pages
//! are only backed as it touches them.

/// The stack size used when the `RLIMIT_STACK` soft limit is unlimited or cannot be read:
/// the usual limit on Linux and macOS.
const FALLBACK_STACK_SIZE: usize = 8 << 20;

/// The least the default gives: `std`'s own default for the threads it starts.
const MIN_DEFAULT_STACK_SIZE: usize = 2 << 20;

/// The main thread's stack size, which [`Threaded`](super::Threaded) and
/// [`Pool`](super::Pool) give their threads by default: the `RLIMIT_STACK` soft limit;
/// [`FALLBACK_STACK_SIZE`] (8 MiB) if it is unlimited or cannot be read; never less than
/// [`MIN_DEFAULT_STACK_SIZE`] (2 MiB, `std`'s default).
pub(crate) fn main_thread_stack_size() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` only writes one `rlimit` through the pointer, which points to a
    // live, writable `rlimit` on this stack for the length of the call.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) };
    if status != 0 {
        let error = std::io::Error::last_os_error();
        tracing::debug!(error = %error, fallback = FALLBACK_STACK_SIZE, "cannot read RLIMIT_STACK; module threads get the fallback stack size");
        return FALLBACK_STACK_SIZE;
    }
    from_soft_limit(limit.rlim_cur)
}

/// The default stack size for an `RLIMIT_STACK` soft limit of `soft`.
fn from_soft_limit(soft: libc::rlim_t) -> usize {
    if soft == libc::RLIM_INFINITY {
        return FALLBACK_STACK_SIZE;
    }
    // A limit past the address space is as good as unlimited.
    usize::try_from(soft)
        .unwrap_or(FALLBACK_STACK_SIZE)
        .max(MIN_DEFAULT_STACK_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_the_default_within_bounds() {
        assert_eq!(from_soft_limit(16 << 20), 16 << 20);
        assert_eq!(from_soft_limit(8 << 20), 8 << 20);
        assert_eq!(from_soft_limit(libc::RLIM_INFINITY), FALLBACK_STACK_SIZE);
        assert_eq!(from_soft_limit(64 << 10), MIN_DEFAULT_STACK_SIZE);
        assert_eq!(from_soft_limit(0), MIN_DEFAULT_STACK_SIZE);
    }
}
