//! Register-blocked microkernels for direct convolution on AVX-512: a block of output pixels times
//! up to 64 channels is accumulated in `zmm` registers, broadcasting one input value per pixel
//! against 16-wide weight vectors, with no im2col buffer. The callers describe a convolution as
//! strided rows and contiguous reduction segments ([`Seg`]); the slices are bounds-checked once per
//! call, before the unchecked inner loops. [`available`] says whether the CPU can run them.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Output channels a vector holds.
pub(crate) const LANES: usize = 16;

/// A contiguous stretch of the reduction: the `len` input values at offset `x` from a pixel's
/// first input, against the `len` weight rows starting at element `w` (rows `w_row` apart).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seg {
    pub x: usize,
    pub w: usize,
    pub len: usize,
}

/// Whether the microkernels run on this CPU (x86-64 with AVX-512F).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One row of `pixels` output pixels, `channels` (a multiple of 16) wide:
/// `y[p * y_px + c] = bias[c] + sum_{s in segs, j < s.len} x[p * x_px + s.x + j] * w[s.w + j * w_row + c]`.
/// Each output's terms are added in segment order whatever the blocking. Every `y` element of the
/// row's pixels and channels is written (`y` may start uninitialised). Needs [`available`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_row(
    (x, x_px): (&[f32], usize),
    (w, w_row): (&[f32], usize),
    segs: &[Seg],
    (y, y_px): (&mut [MaybeUninit<f32>], usize),
    pixels: usize,
    channels: usize,
    bias: Option<&[f32]>,
) {
    assert!(available() && channels.is_multiple_of(LANES) && pixels > 0);
    let x_end = segs.iter().map(|s| s.x + s.len).max().unwrap_or(0);
    let w_end = segs.iter().filter(|s| s.len > 0).map(|s| s.w + (s.len - 1) * w_row + channels).max();
    assert!(segs.iter().all(|s| s.len == 0) || (pixels - 1) * x_px + x_end <= x.len(), "input row");
    assert!(w_end.unwrap_or(0) <= w.len() && (pixels - 1) * y_px + channels <= y.len(), "weight or output");
    assert!(bias.is_none_or(|b| b.len() >= channels), "bias");
    #[cfg(target_arch = "x86_64")]
    {
        let mut c0 = 0;
        while c0 < channels {
            // Four vectors of a 64-wide row stream the weight from L2 too often; two are enough.
            let nv = ((channels - c0) / LANES).min(if channels > 48 { 2 } else { 3 });
            let b = bias.map_or(std::ptr::null(), |b| b[c0..].as_ptr());
            let mut p = 0;
            while p < pixels {
                let r = (pixels - p).min(8);
                // SAFETY: AVX-512F is present and every address the block touches was checked
                // above: pixels p..p+r < pixels, channels c0..c0+16*nv <= channels, the segments'
                // input and weight extents, and the bias length.
                unsafe {
                    let k = Block {
                        x: x.as_ptr().add(p * x_px),
                        x_px,
                        w: w.as_ptr().add(c0),
                        w_row,
                        y: y.as_mut_ptr().add(p * y_px + c0).cast(),
                        y_px,
                        bias: b,
                    };
                    dispatch(&k, segs, r, nv);
                }
                p += r;
            }
            c0 += nv * LANES;
        }
    }
}

/// Pointers and strides of one output block (elements).
#[cfg(target_arch = "x86_64")]
struct Block {
    x: *const f32,
    x_px: usize,
    w: *const f32,
    w_row: usize,
    y: *mut f32,
    y_px: usize,
    bias: *const f32,
}

/// Runs the `r`-pixel, `nv`-vector block (`r <= 8`, `nv <= 3`).
///
/// # Safety
/// AVX-512F, and every address the block reads or writes lies in its slice.
#[cfg(target_arch = "x86_64")]
unsafe fn dispatch(k: &Block, segs: &[Seg], r: usize, nv: usize) {
    macro_rules! by_r {
        ($nv:literal) => {
            // SAFETY: forwarded from the caller.
            unsafe {
                match r {
                    8 => block::<8, $nv>(k, segs),
                    7 => block::<7, $nv>(k, segs),
                    6 => block::<6, $nv>(k, segs),
                    5 => block::<5, $nv>(k, segs),
                    4 => block::<4, $nv>(k, segs),
                    3 => block::<3, $nv>(k, segs),
                    2 => block::<2, $nv>(k, segs),
                    _ => block::<1, $nv>(k, segs),
                }
            }
        };
    }
    match nv {
        3 => by_r!(3),
        2 => by_r!(2),
        _ => by_r!(1),
    }
}

/// `R` pixels times `NV` vectors of outputs, accumulated in registers over every segment.
///
/// # Safety
/// AVX-512F, and every address the block reads or writes lies in its slice.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn block<const R: usize, const NV: usize>(k: &Block, segs: &[Seg]) {
    let mut acc = [[_mm512_setzero_ps(); NV]; R];
    // SAFETY: the caller guarantees the extents; the pointers stay inside them.
    unsafe {
        for s in segs {
            let (xs, ws) = (k.x.add(s.x), k.w.add(s.w));
            for j in 0..s.len {
                let wj = ws.add(j * k.w_row);
                let wv: [__m512; NV] = std::array::from_fn(|v| _mm512_loadu_ps(wj.add(v * LANES)));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_ps(*xs.add(r * k.x_px + j));
                    for (a, w) in acc.iter_mut().zip(&wv) {
                        *a = _mm512_fmadd_ps(b, *w, *a);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, a) in acc.iter().enumerate() {
                let mut a = *a;
                if !k.bias.is_null() {
                    a = _mm512_add_ps(a, _mm512_loadu_ps(k.bias.add(v * LANES)));
                }
                _mm512_storeu_ps(k.y.add(r * k.y_px + v * LANES), a);
            }
        }
    }
}

/// Adds one image's weight-gradient block:
/// `acc[r * acc_row + c] += sum_{oh < rows, ow < cols} x[oh * x_row + ow * x_px + r] * dy[(oh * cols + ow) * dy_px + c]`
/// for `r < acc_rows` and `c < channels` (a multiple of 16); the pixels are added in row-major
/// order, for every block size. Needs [`available`].
pub(crate) fn weight_grad(
    (x, x_row, x_px): (&[f32], usize, usize),
    (dy, dy_px): (&[f32], usize),
    (rows, cols): (usize, usize),
    (acc, acc_row, acc_rows): (&mut [f32], usize, usize),
    channels: usize,
) {
    assert!(available() && channels.is_multiple_of(LANES) && rows > 0 && cols > 0 && acc_rows > 0);
    assert!((rows - 1) * x_row + (cols - 1) * x_px + acc_rows <= x.len(), "input");
    assert!((rows * cols - 1) * dy_px + channels <= dy.len(), "gradient");
    assert!((acc_rows - 1) * acc_row + channels <= acc.len(), "accumulator");
    #[cfg(target_arch = "x86_64")]
    {
        let mut c0 = 0;
        while c0 < channels {
            let nv = ((channels - c0) / LANES).min(4);
            let mut r0 = 0;
            while r0 < acc_rows {
                let r = (acc_rows - r0).min(if nv > 2 { 6 } else { 12 });
                // SAFETY: AVX-512F is present and the extents were checked above for the whole
                // call; this block reads rows r0..r0+r < acc_rows and channels c0..c0+16*nv.
                unsafe {
                    let k = GradBlock {
                        x: x.as_ptr().add(r0),
                        x_row,
                        x_px,
                        dy: dy.as_ptr().add(c0),
                        dy_px,
                        rows,
                        cols,
                        acc: acc.as_mut_ptr().add(r0 * acc_row + c0),
                        acc_row,
                    };
                    grad_dispatch(&k, r, nv);
                }
                r0 += r;
            }
            c0 += nv * LANES;
        }
    }
}

/// Pointers and strides of one weight-gradient block (elements).
#[cfg(target_arch = "x86_64")]
struct GradBlock {
    x: *const f32,
    x_row: usize,
    x_px: usize,
    dy: *const f32,
    dy_px: usize,
    rows: usize,
    cols: usize,
    acc: *mut f32,
    acc_row: usize,
}

/// Runs the `r`-row, `nv`-vector gradient block (`r <= 12`, `nv <= 4`, `r <= 6` when `nv > 2`).
///
/// # Safety
/// AVX-512F, and every address the block reads or writes lies in its slice.
#[cfg(target_arch = "x86_64")]
unsafe fn grad_dispatch(k: &GradBlock, r: usize, nv: usize) {
    macro_rules! by_r {
        ($nv:literal, $($r:literal)*) => {
            // SAFETY: forwarded from the caller.
            unsafe {
                match r {
                    $($r => grad_block::<$r, $nv>(k),)*
                    _ => grad_block::<1, $nv>(k),
                }
            }
        };
    }
    match nv {
        4 => by_r!(4, 6 5 4 3 2),
        3 => by_r!(3, 6 5 4 3 2),
        2 => by_r!(2, 12 11 10 9 8 7 6 5 4 3 2),
        _ => by_r!(1, 12 11 10 9 8 7 6 5 4 3 2),
    }
}

/// `R` gradient rows times `NV` vectors, accumulated in registers over all of the image's pixels.
///
/// # Safety
/// AVX-512F, and every address the block reads or writes lies in its slice.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn grad_block<const R: usize, const NV: usize>(k: &GradBlock) {
    // SAFETY: the caller guarantees the extents; the pointers stay inside them.
    unsafe {
        let mut acc: [[__m512; NV]; R] = std::array::from_fn(|r| {
            std::array::from_fn(|v| _mm512_loadu_ps(k.acc.add(r * k.acc_row + v * LANES)))
        });
        for oh in 0..k.rows {
            let xr = k.x.add(oh * k.x_row);
            let dr = k.dy.add(oh * k.cols * k.dy_px);
            for ow in 0..k.cols {
                let (xp, dp) = (xr.add(ow * k.x_px), dr.add(ow * k.dy_px));
                let d: [__m512; NV] = std::array::from_fn(|v| _mm512_loadu_ps(dp.add(v * LANES)));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_ps(*xp.add(r));
                    for (a, d) in acc.iter_mut().zip(&d) {
                        *a = _mm512_fmadd_ps(b, *d, *a);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(k.acc.add(r * k.acc_row + v * LANES), *a);
            }
        }
    }
}
