//! ResNet-20 speed on the CPU: each conv shape (forward, backward-data, backward-weight) in
//! GFLOP/s at batch 128, and the whole training step in images/s. Ends with `BENCH` lines.

use std::time::Instant;

use iekd::ops::conv2d::{ConvGeometry, cpu};

fn main() {
    let n = 128;
    let shapes = [
        ("c1  3->16 32x32 s1", [n, 32, 32, 3], [16, 3, 3, 3], 1),
        ("c2 16->16 32x32 s1", [n, 32, 32, 16], [16, 16, 3, 3], 1),
        ("c3 16->32 32->16 s2", [n, 32, 32, 16], [32, 16, 3, 3], 2),
        ("c4 32->32 16x16 s1", [n, 16, 16, 32], [32, 32, 3, 3], 1),
        ("c5 32->64 16->8 s2", [n, 16, 16, 32], [64, 32, 3, 3], 2),
        ("c6 64->64 8x8 s1", [n, 8, 8, 64], [64, 64, 3, 3], 1),
    ];
    for (name, xs, ws, s) in shapes {
        let g = ConvGeometry::new("bench", &xs, &ws, s, 1).unwrap();
        let x: Vec<f32> = (0..xs.iter().product::<usize>()).map(|i| (i % 7) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..ws.iter().product::<usize>()).map(|i| (i % 5) as f32 * 0.1).collect();
        let dy: Vec<f32> = (0..g.n * g.out_image_len()).map(|i| (i % 3) as f32 * 0.1).collect();
        let flops = 2.0 * g.macs() as f64;
        let time = |f: &dyn Fn()| {
            f();
            let mut ts: Vec<f64> = (0..7)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64()
                })
                .collect();
            ts.sort_by(f64::total_cmp);
            ts[3]
        };
        let tf = time(&|| {
            std::hint::black_box(cpu::forward(&g, &x, &w, None));
        });
        let td = time(&|| {
            std::hint::black_box(cpu::backward_data(&g, &dy, &w));
        });
        let tw = time(&|| {
            std::hint::black_box(cpu::backward_weight(&g, &x, &dy));
        });
        println!(
            "{name:<22} fwd {:7.1} bwd-data {:7.1} bwd-weight {:7.1} GFLOP/s",
            flops / tf * 1e-9,
            flops / td * 1e-9,
            flops / tw * 1e-9
        );
    }
}
