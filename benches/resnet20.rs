//! ResNet-20 on the CPU: each conv shape's forward, backward-data and backward-weight in GFLOP/s
//! (batch 128, percent of the measured FMA peak), then whole training steps in images/s.
//! Ends with one `BENCH <name> <value> <unit>` line per figure.
//!
//! `cargo bench --bench resnet20` (threads: RAYON_NUM_THREADS, default all cores).

use iekd::bench;

fn main() -> iekd::Result<()> {
    let batch = 128;
    let peak = bench::fma_peak_gflops();
    println!("{} threads, fp32 FMA peak {peak:.0} GFLOP/s, batch {batch}", rayon::current_num_threads());
    println!("{:<22} {:>9} {:>9} {:>9} {:>8}", "conv", "fwd", "bwd-data", "bwd-wgt", "% peak");
    let mut lines = vec![format!("BENCH fma_peak {peak:.1} GFLOP/s")];
    for shape in bench::resnet20_conv_shapes(batch)? {
        let [f, d, w] = bench::conv_gflops(&shape.geometry, 5)?;
        let mean = 3.0 / (1.0 / f + 1.0 / d + 1.0 / w);
        println!("{:<22} {f:>9.1} {d:>9.1} {w:>9.1} {:>7.0}%", shape.name, 100.0 * mean / peak);
        let key = shape.name.split_whitespace().next().unwrap_or(shape.name);
        lines.push(format!("BENCH conv_{key}_fwd {f:.1} GFLOP/s"));
        lines.push(format!("BENCH conv_{key}_bwd_data {d:.1} GFLOP/s"));
        lines.push(format!("BENCH conv_{key}_bwd_weight {w:.1} GFLOP/s"));
    }
    for depth in [20, 56] {
        let ips = bench::resnet_train_images_per_sec(depth, batch, 5)?;
        println!("resnet{depth} train step: {ips:.1} images/s");
        lines.push(format!("BENCH resnet{depth}_train_step {ips:.1} img/s"));
    }
    println!("{}", lines.join("\n"));
    Ok(())
}
