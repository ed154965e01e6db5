//! A safe, bounds-checked front for the `gemm` crate's matrix product.

/// A read-only strided matrix view: element `(r, c)` is `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A contiguous row-major `rows x cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn assert_in_bounds(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "matrix view exceeds its slice");
        }
    }
}

/// `dst = a * b` (or `dst += a * b` when `accumulate`), with `dst` a contiguous row-major
/// `a.rows x b.cols` matrix. `threads > 1` lets gemm split the product over rayon.
pub(crate) fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, threads: usize) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    assert_eq!(dst.len(), a.rows * b.cols, "destination size");
    a.assert_in_bounds();
    b.assert_in_bounds();
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: every index gemm touches lies inside the three slices: `dst` is exactly
    // a.rows x b.cols contiguous, and the views were checked to fit their slices above. `dst`
    // is an exclusive borrow, so it cannot alias the inputs.
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            dst.as_mut_ptr(),
            1,
            b.cols as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product_with_transposes() {
        let a: Vec<f32> = (0..6).map(|i| i as f32).collect(); // 2x3
        let b: Vec<f32> = (0..12).map(|i| (i as f32) * 0.5 - 1.0).collect(); // 3x4
        let mut dst = vec![1.0; 8];
        matmul(&mut dst, Mat::row_major(&a, 2, 3), Mat::row_major(&b, 3, 4), true, 1);
        for r in 0..2 {
            for c in 0..4 {
                let want: f32 = 1.0 + (0..3).map(|k| a[r * 3 + k] * b[k * 4 + c]).sum::<f32>();
                assert_eq!(dst[r * 4 + c], want);
            }
        }
        // (b^T a^T)^T = a b: a 4x2 product through transposed views.
        let mut dst_t = vec![0.0; 8];
        matmul(&mut dst_t, Mat::row_major(&b, 3, 4).t(), Mat::row_major(&a, 2, 3).t(), false, 1);
        for r in 0..2 {
            for c in 0..4 {
                assert_eq!(dst_t[c * 2 + r] + 1.0, dst[r * 4 + c]);
            }
        }
    }
}
