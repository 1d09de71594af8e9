//! The process's memory allocator: glibc's malloc keeps an arena per thread
//! that allocates at once (up to eight per core), and each arena holds on
//! to what it freed. Two arenas are enough for a runtime of one worker per
//! core and keep a burst's freed memory reusable by every thread.

/// How many arenas glibc's malloc may create.
const ARENAS: i32 = 2;

/// Limits glibc's malloc to [`ARENAS`] arenas; call before any thread starts.
/// Elsewhere (another C library) it does nothing.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator; it is called
    // before the process starts its threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}
