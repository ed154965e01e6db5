//! The allocator of the `iekd` binary and the benchmarks: mimalloc, told to keep freed pages.
//!
//! A training step frees and re-allocates activation-sized buffers (megabytes each) hundreds of
//! times. glibc returns such blocks to the system and every reuse page-faults; mimalloc reuses
//! them, and with purging off it also keeps them committed. Library users choose their own
//! allocator; these two lines give them the same speed:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: iekd::alloc::MiMalloc = iekd::alloc::MiMalloc;
//! // first thing in main():
//! iekd::alloc::keep_freed_pages();
//! ```

pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e`, which the Rust bindings do not name: it
/// directly precedes `mi_option_use_numa_nodes` (a test checks its default value).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// Tells mimalloc never to return freed pages to the system (purge delay -1).
pub fn keep_freed_pages() {
    // SAFETY: setting an option is a plain store into mimalloc's option table; -1 is a documented
    // value of this option ("no purging at all").
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn purge_delay_is_the_option_before_numa_nodes() {
        // SAFETY: reading an option is a plain load from mimalloc's option table.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert!(
            [10, 1000].contains(&default),
            "purge delay defaults to 10 ms (mimalloc 2) or 1000 ms (3), got {default}"
        );
    }
}
