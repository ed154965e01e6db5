//! Per-thread scratch buffers, reused across calls so hot loops do not page-fault fresh memory.

use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// Runs `f` with two scratch slices of `len_a` and `len_b` elements (contents unspecified).
pub(crate) fn with_scratch<R>(len_a: usize, len_b: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let [a, b] = &mut *s;
        if a.len() < len_a {
            a.resize(len_a, 0.0);
        }
        if b.len() < len_b {
            b.resize(len_b, 0.0);
        }
        f(&mut a[..len_a], &mut b[..len_b])
    })
}
