//! Scalar references of the tensor-core building blocks, written from the PTX ISA's text apart
//! from the emulation of `kernels/emu/tensor_core_emu.h`: operand rounding, the fragment layouts
//! of `mma.m16n8k8` (tf32) and `mma.m16n8k16` (bf16), the products in f64, and `ldmatrix`.

use half::bf16;

/// Rows of A, C and D in one mma.
pub const M: usize = 16;
/// Columns of B, C and D in one mma.
pub const N: usize = 8;
/// Lanes of a warp.
pub const LANES: usize = 32;

/// The operand type of an mma, which fixes its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32`.
    Tf32,
    /// `mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32`.
    Bf16,
}

impl Kind {
    /// The depth of one mma: 8 or 16.
    pub fn k(self) -> usize {
        match self {
            Kind::Tf32 => 8,
            Kind::Bf16 => 16,
        }
    }

    /// The `mode` of the kernels `tensor_core_round` and `mma_fragments`.
    pub fn mode(self) -> i32 {
        match self {
            Kind::Tf32 => 0,
            Kind::Bf16 => 1,
        }
    }

    /// Operand elements per 32-bit register.
    pub fn per_word(self) -> usize {
        match self {
            Kind::Tf32 => 1,
            Kind::Bf16 => 2,
        }
    }

    /// `x` as this operand type holds it.
    pub fn round(self, x: f32) -> f32 {
        match self {
            Kind::Tf32 => tf32(x),
            Kind::Bf16 => bf16::from_f32(x).to_f32(),
        }
    }

    /// The 32-bit register holding `elems` (one, or two with the first in the low half).
    pub fn word(self, elems: &[f32]) -> i32 {
        let bits = match self {
            Kind::Tf32 => tf32(elems[0]).to_bits(),
            Kind::Bf16 => elems.iter().rev().fold(0u32, |w, &x| w << 16 | bf16::from_f32(x).to_bits() as u32),
        };
        bits as i32
    }

    /// (row, column) in A of element `i` of lane `lane`'s fragment (`a0`, `a1`, ...).
    pub fn a_at(self, lane: usize, i: usize) -> (usize, usize) {
        let (g, t) = (lane >> 2, lane % 4);
        match self {
            // row g for a0 and a2, g + 8 for a1 and a3; column t for a0 and a1, t + 4 for a2, a3.
            Kind::Tf32 => (g + 8 * (i % 2), t + 4 * (i / 2)),
            // row g for i < 2 or 4 <= i < 6, else g + 8; column 2t + (i & 1), + 8 for i >= 4.
            Kind::Bf16 => (g + 8 * (i / 2 % 2), 2 * t + (i & 1) + 8 * (i / 4)),
        }
    }

    /// (row, column) in B of element `i` of lane `lane`'s fragment (`b0`, `b1`, ...).
    pub fn b_at(self, lane: usize, i: usize) -> (usize, usize) {
        let (g, t) = (lane >> 2, lane % 4);
        match self {
            // row t for b0, t + 4 for b1; column g.
            Kind::Tf32 => (t + 4 * i, g),
            // row 2t + (i & 1) for i < 2, + 8 for i >= 2; column g.
            Kind::Bf16 => (2 * t + (i & 1) + 8 * (i / 2), g),
        }
    }

    /// Lane `lane`'s registers of A, given as element `(row, column)` -> value.
    pub fn a_words(self, lane: usize, a: impl Fn(usize, usize) -> f32) -> [i32; 4] {
        std::array::from_fn(|r| self.regs(r, |i| a(self.a_at(lane, i).0, self.a_at(lane, i).1)))
    }

    /// Lane `lane`'s registers of B, given as element `(row, column)` -> value.
    pub fn b_words(self, lane: usize, b: impl Fn(usize, usize) -> f32) -> [i32; 2] {
        std::array::from_fn(|r| self.regs(r, |i| b(self.b_at(lane, i).0, self.b_at(lane, i).1)))
    }

    /// Register `r` from the values of its elements `per_word * r ..`.
    fn regs(self, r: usize, elem: impl Fn(usize) -> f32) -> i32 {
        let n = self.per_word();
        let elems: Vec<f32> = (n * r..n * (r + 1)).map(elem).collect();
        self.word(&elems)
    }
}

/// `x` rounded to tf32 as `cvt.rna.tf32.f32` does: 10 mantissa bits, to nearest with ties away
/// from zero.
pub fn tf32(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    f32::from_bits((x.to_bits() + 0x1000) & 0xffff_e000)
}

/// (row, column) in C and D of accumulator `i` of lane `lane`: row g for c0 and c1, g + 8 for c2
/// and c3; column 2t + (i & 1).
pub fn c_at(lane: usize, i: usize) -> (usize, usize) {
    let (g, t) = (lane >> 2, lane % 4);
    (g + 8 * (i / 2), 2 * t + (i & 1))
}

/// The accumulator registers, lane by lane, of the row-major `M x N` matrix `m`.
pub fn to_accumulators(m: &[f32]) -> Vec<f32> {
    (0..LANES * 4)
        .map(|e| {
            let (row, col) = c_at(e / 4, e % 4);
            m[row * N + col]
        })
        .collect()
}

/// The row-major `M x N` matrix held in the accumulator registers `regs`, lane by lane.
pub fn from_accumulators(regs: &[f32]) -> Vec<f32> {
    let mut m = vec![0.0; M * N];
    for (e, &v) in regs.iter().enumerate() {
        let (row, col) = c_at(e / 4, e % 4);
        m[row * N + col] = v;
    }
    m
}

/// `D = A B + C` in f64 from `A [m, k]` and `B [k, n]` rounded to `kind`, `C` and `D` `[m, n]`,
/// all row-major.
pub fn matmul(kind: Kind, a: &[f32], b: &[f32], c: &[f32], (m, n, k): (usize, usize, usize)) -> Vec<f32> {
    let mut d = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let products = (0..k).map(|l| kind.round(a[i * k + l]) as f64 * kind.round(b[l * n + j]) as f64);
            d.push((c[i * n + j] as f64 + products.sum::<f64>()) as f32);
        }
    }
    d
}

/// What `ldmatrix` with `x` matrices (1, 2 or 4), transposed or not, hands the lanes when lane
/// `l` addresses `row_of[l]` (8 elements): for each lane, its registers' elements, low half then
/// high, zeros past `x`. Register `j` of lane `i` holds row `i / 4`, elements `2 (i % 4)` and
/// `2 (i % 4) + 1` of matrix `j` (of its transpose with `trans`), whose row `r` lane `8 j + r`
/// addressed.
pub fn ldmatrix(x: usize, trans: bool, row_of: &[[f32; 8]]) -> Vec<f32> {
    let mut out = vec![0.0; LANES * 8];
    for lane in 0..LANES {
        for j in 0..x {
            let element = |row: usize, col: usize| row_of[8 * j + row][col];
            for half in 0..2 {
                let (row, col) = (lane / 4, 2 * (lane % 4) + half);
                out[lane * 8 + 2 * j + half] = if trans { element(col, row) } else { element(row, col) };
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_follows_the_conversion_instructions() {
        // tf32: a tie rounds away from zero, in both signs; below a tie rounds down.
        assert_eq!(tf32(f32::from_bits(0x3f80_1000)).to_bits(), 0x3f80_2000);
        assert_eq!(tf32(f32::from_bits(0xbf80_1000)).to_bits(), 0xbf80_2000);
        assert_eq!(tf32(f32::from_bits(0x3f80_0fff)).to_bits(), 0x3f80_0000);
        assert_eq!(tf32(f32::MAX), f32::INFINITY);
        // bf16: ties to even; the first element of a pair in the low half.
        assert_eq!(Kind::Bf16.word(&[f32::from_bits(0x3f80_8000), f32::from_bits(0x3f81_8000)]), 0x3f82_3f80);
        assert_eq!(Kind::Tf32.word(&[1.0]), 0x3f80_0000);
    }

    #[test]
    fn each_fragment_covers_its_matrix_once() {
        for kind in [Kind::Tf32, Kind::Bf16] {
            let mut a = vec![0; M * kind.k()];
            let mut b = vec![0; kind.k() * N];
            let mut c = vec![0; M * N];
            for lane in 0..LANES {
                (0..4 * kind.per_word())
                    .for_each(|i| a[kind.a_at(lane, i).0 * kind.k() + kind.a_at(lane, i).1] += 1);
                (0..2 * kind.per_word())
                    .for_each(|i| b[kind.b_at(lane, i).0 * N + kind.b_at(lane, i).1] += 1);
                (0..4).for_each(|i| c[c_at(lane, i).0 * N + c_at(lane, i).1] += 1);
            }
            assert!(a.iter().chain(&b).chain(&c).all(|&n| n == 1), "{kind:?}");
        }
        let m: Vec<f32> = (0..M * N).map(|v| v as f32).collect();
        assert_eq!(from_accumulators(&to_accumulators(&m)), m);
    }

    #[test]
    fn ldmatrix_reference_matches_the_isa_text() {
        let rows: Vec<[f32; 8]> = (0..32).map(|r| std::array::from_fn(|e| (8 * r + e) as f32)).collect();
        let plain = ldmatrix(4, false, &rows);
        // Lane 5, register 2: row 1 of matrix 2 (addressed by lane 17), elements 2 and 3.
        assert_eq!(plain[5 * 8 + 4..5 * 8 + 6], [(8 * 17 + 2) as f32, (8 * 17 + 3) as f32]);
        let trans = ldmatrix(1, true, &rows);
        // Lane 5, register 0 transposed: elements (2, 1) and (3, 1) of matrix 0.
        assert_eq!(trans[5 * 8..5 * 8 + 2], [(8 * 2 + 1) as f32, (8 * 3 + 1) as f32]);
        assert!(trans[5 * 8 + 2..5 * 8 + 8].iter().all(|&v| v == 0.0));
    }
}
