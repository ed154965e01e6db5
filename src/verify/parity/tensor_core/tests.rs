//! The tensor-core building blocks on the emulated device: every fragment register of both mma
//! shapes placed by a one-hot operand, ldmatrix's documented elements, cp.async pipelines over
//! many commit groups, and the kernels' contracts.

use super::reference::{self, Kind, LANES, M, N};
use super::{Ctx, gemm_params, random_fragments, run_gemm, sum_tol, warps};
use crate::cuda::exec::Exec;
use crate::cuda::gpu::Gpu;
use crate::cuda::kernels;
use crate::cuda::params::{GemmParams, MapParams};

/// Runs `mma_fragments` on the registers given, returning the D registers.
fn mma(e: &Gpu, kind: Kind, tiles: usize, (a, b, c): (&[i32], &[i32], &[f32])) -> Vec<f32> {
    let p = MapParams { len: tiles as i32, mode: kind.mode(), a: 0.0 };
    let (a, b, c) = (e.upload(a).unwrap(), e.upload(b).unwrap(), e.upload(c).unwrap());
    let mut d = e.alloc::<f32>(tiles * LANES * 4).unwrap();
    kernels::mma_fragments(e, warps([tiles as u32, 1]), &p, &a, &b, &c, &mut d).unwrap();
    e.download(&d).unwrap()
}

/// For one tile per register element of A (or of B), that element 1 and every other 0, with the
/// other operand holding distinct small integers: D must be the row of B (column of A) that the
/// PTX ISA's table puts the one at, exactly.
fn one_hot_operand(kind: Kind, in_a: bool) {
    let e = Gpu::emulated();
    let elems = if in_a { 4 } else { 2 } * kind.per_word();
    let k = kind.k();
    // Distinct integers, exact in bf16 (at most 256).
    let a_coded = |r: usize, l: usize| (1 + r * k + l) as f32;
    let b_coded = |l: usize, c: usize| (1 + l * N + c) as f32;
    let (mut fa, mut fb, mut want) = (Vec::new(), Vec::new(), Vec::new());
    for (hot_lane, hot) in (0..LANES).flat_map(|l| (0..elems).map(move |i| (l, i))) {
        let (hot_row, hot_col) = if in_a { kind.a_at(hot_lane, hot) } else { kind.b_at(hot_lane, hot) };
        let one = |row: usize, col: usize| if (row, col) == (hot_row, hot_col) { 1.0 } else { 0.0 };
        for lane in 0..LANES {
            if in_a {
                fa.extend(kind.a_words(lane, one));
                fb.extend(kind.b_words(lane, b_coded));
            } else {
                fa.extend(kind.a_words(lane, a_coded));
                fb.extend(kind.b_words(lane, one));
            }
        }
        let d: Vec<f32> = (0..M * N)
            .map(|x| {
                let (row, col) = (x / N, x % N);
                match in_a {
                    true if row == hot_row => b_coded(hot_col, col),
                    false if col == hot_col => a_coded(row, hot_row),
                    _ => 0.0,
                }
            })
            .collect();
        want.push(d);
    }
    let tiles = want.len();
    let got = mma(&e, kind, tiles, (&fa, &fb, &vec![0.0; tiles * LANES * 4]));
    for (tile, want) in want.iter().enumerate() {
        let d = reference::from_accumulators(&got[tile * LANES * 4..(tile + 1) * LANES * 4]);
        let (lane, i) = (tile / elems, tile % elems);
        assert_eq!(
            &d,
            want,
            "{kind:?}: element {i} of lane {lane}'s {} fragment",
            if in_a { "A" } else { "B" }
        );
    }
}

#[test]
fn every_a_element_lands_where_the_ptx_isa_places_it() {
    one_hot_operand(Kind::Tf32, true);
    one_hot_operand(Kind::Bf16, true);
}

#[test]
fn every_b_element_lands_where_the_ptx_isa_places_it() {
    one_hot_operand(Kind::Tf32, false);
    one_hot_operand(Kind::Bf16, false);
}

#[test]
fn random_fragments_match_the_f64_product() {
    let e = Gpu::emulated();
    let mut cx = Ctx::new(&e, 7);
    for kind in [Kind::Tf32, Kind::Bf16] {
        let (a, b, c, want) = random_fragments(&mut cx, kind, 4);
        let got = mma(&e, kind, 4, (&a, &b, &c));
        cx.compare_host("mma_fragments", &format!("{kind:?}"), &got, &want, sum_tol(kind.k()));
    }
    let checks = cx.into_checks();
    assert!(checks.iter().all(|c| c.passed()), "{checks:?}");
}

#[test]
fn tf32_operands_use_only_their_top_19_bits() {
    // A's low 13 bits set: the mma must ignore them, as the hardware does.
    let e = Gpu::emulated();
    let kind = Kind::Tf32;
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    for lane in 0..LANES {
        fa.extend(kind.a_words(lane, |_, _| 1.0).map(|w| w | 0x1fff));
        fb.extend(kind.b_words(lane, |_, _| 1.0));
    }
    let d = mma(&e, kind, 1, (&fa, &fb, &[0.0; LANES * 4]));
    assert!(d.iter().all(|&v| v == 8.0), "{d:?}");
}

#[test]
fn ldmatrix_hands_each_lane_the_documented_elements() {
    let e = Gpu::emulated();
    // Element e of source row r holds 8 r + e; lane l addresses row 31 - l.
    let values: Vec<f32> = (0..32 * 8).map(|v| v as f32).collect();
    let rows: Vec<i32> = (0..LANES as i32).rev().collect();
    let row_of: Vec<[f32; 8]> =
        rows.iter().map(|&r| std::array::from_fn(|c| (8 * r) as f32 + c as f32)).collect();
    let src = e.upload(&super::bf16_words(&values)).unwrap();
    let rows_buf = e.upload(&rows).unwrap();
    for mode in 0..6 {
        let (x, trans) = (1 << (mode % 3), mode >= 3);
        let mut out = e.alloc::<f32>(LANES * 8).unwrap();
        let p = MapParams { len: 32, mode, a: 0.0 };
        kernels::ldmatrix_rows(&e, warps([1, 1]), &p, &src, &rows_buf, &mut out).unwrap();
        let out = e.download(&out).unwrap();
        assert_eq!(out, reference::ldmatrix(x, trans, &row_of), "x{x} trans {trans}");
        if x == 4 && !trans {
            // Lane 6, register 3: row 1 of matrix 3, addressed by lane 25 (source row 6), elements 4, 5.
            assert_eq!(out[6 * 8 + 6..6 * 8 + 8], [52.0, 53.0]);
        }
    }
    // A row index outside the source falls back to row 0 instead of reading past it.
    let wild = e.upload(&[1000i32; LANES]).unwrap();
    let mut out = e.alloc::<f32>(LANES * 8).unwrap();
    let p = MapParams { len: 32, mode: 0, a: 0.0 };
    kernels::ldmatrix_rows(&e, warps([1, 1]), &p, &src, &wild, &mut out).unwrap();
    assert_eq!(e.download(&out).unwrap()[..2], [0.0, 1.0]);
}

#[test]
fn cp_async_pipelines_over_many_groups_deliver_exact_products() {
    // Small integers: every product and sum is exact in f32, so any stale or missing tile shows.
    let e = Gpu::emulated();
    let (m, n, k) = (32, 16, 96);
    let ints = |len: usize, seed: usize| -> Vec<f32> {
        (0..len).map(|i| ((i * 7 + seed) % 9) as f32 - 4.0).collect()
    };
    let (a, b, c) = (ints(m * k, 1), ints(k * n, 2), ints(m * n, 3));
    for kind in [Kind::Tf32, Kind::Bf16] {
        let got = run_gemm(&e, kind, (&a, &b, &c), (m, n, k)).unwrap();
        assert_eq!(got, reference::matmul(kind, &a, &b, &c, (m, n, k)), "{kind:?}");
    }
}

#[test]
fn contracts_reject_shapes_the_kernels_do_not_take() {
    let e = Gpu::emulated();
    let (x, c) = (e.upload(&[0.0f32; 16 * 12]).unwrap(), e.upload(&[0.0f32; 16 * 8]).unwrap());
    let mut d = e.alloc::<f32>(16 * 8).unwrap();
    let err = kernels::mma_tf32_gemm(&e, warps([1, 1]), &gemm_params(16, 8, 12), &x, &x, &c, &mut d);
    assert!(err.unwrap_err().to_string().contains("p.k % 8 == 0"));
    let words = e.upload(&[0i32; 16 * 16]).unwrap();
    let strided = GemmParams { a_row: 32, ..gemm_params(16, 8, 16) };
    let err = kernels::mma_bf16_gemm(&e, warps([1, 1]), &strided, &words, &words, &c, &mut d);
    assert!(err.unwrap_err().to_string().contains("p.a_row == p.k"));
    let p = MapParams { len: 2, mode: 6, a: 0.0 };
    let err = kernels::ldmatrix_rows(&e, warps([1, 1]), &p, &words, &words, &mut d);
    assert!(err.unwrap_err().to_string().contains("p.mode <= 5"));
}
