//! Reductions whose result does not depend on the number of threads or on scheduling.

use std::ops::{AddAssign, Range};

use rayon::prelude::*;

/// How many contiguous groups the items are split into; fixed, so the order of additions is too.
const GROUPS: usize = 32;

/// Sums, element-wise, the `len`-long partial results of `items` items. The items are split into
/// a fixed number of contiguous groups; `add_items(range, acc)` adds the contributions of the items
/// in `range` to the group's zeroed accumulator `acc`; the groups run in parallel and their
/// partials are added in group order. The same inputs give the same bits on any thread count.
pub(crate) fn ordered_sum<T>(
    items: usize,
    len: usize,
    add_items: impl Fn(Range<usize>, &mut [T]) + Sync,
) -> Vec<T>
where
    T: Copy + Default + AddAssign + Send,
{
    let per = items.div_ceil(GROUPS).max(1);
    let partials: Vec<Vec<T>> = (0..items.div_ceil(per))
        .into_par_iter()
        .map(|g| {
            let mut acc = vec![T::default(); len];
            add_items(g * per..((g + 1) * per).min(items), &mut acc);
            acc
        })
        .collect();
    let mut total = vec![T::default(); len];
    for p in partials {
        total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
    }
    total
}

/// `sums[c] = sum over rows of data[row * cols + c]` (a bias gradient), added in a fixed order.
pub(crate) fn column_sums(cols: usize, data: &[f32]) -> Vec<f32> {
    ordered_sum(data.len() / cols, cols, |rows, acc: &mut [f32]| {
        for row in data[rows.start * cols..rows.end * cols].chunks_exact(cols) {
            acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bits_on_any_thread_count() {
        let values: Vec<f32> = (0..10_007).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 + 1e-7).collect();
        let sum = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                ordered_sum(values.len(), 1, |r, acc: &mut [f32]| values[r].iter().for_each(|v| acc[0] += v))
            })
        };
        let one = sum(1);
        assert_eq!(one, sum(3));
        assert_eq!(one, sum(8));
        let exact: f64 = values.iter().map(|&v| v as f64).sum();
        assert!((one[0] as f64 - exact).abs() < 1e-3 * exact);
    }
}
