"""The GPU comparison table of scripts/gpu-check.sh: iekd's kernels and steps next to PyTorch with
cuDNN measured in the same run, as ratios.

    python3 scripts/gpu_compare.py IEKD_JSON TORCH_JSON

IEKD_JSON is `iekd bench --device cuda --json` ({name: {value, unit}}); TORCH_JSON is
`scripts/torch_gpu_reference.py --json` ([{name, value, unit}]).
"""
import json
import sys


def main(iekd_path, torch_path):
    ours = {k: v["value"] for k, v in json.load(open(iekd_path)).items()}
    torch = {f["name"]: f["value"] for f in json.load(open(torch_path))}
    rows = []
    for conv in ["c1", "c2", "c3", "c4", "c5", "c6"]:
        for part in ["fwd", "bwd_data", "bwd_weight"]:
            rows.append((f"conv {conv} {part} GFLOP/s", f"gpu_conv_{conv}_{part}",
                         f"torch_conv_{conv}_{part}_fp32_cl", f"torch_conv_{conv}_{part}_bf16_cl"))
    for depth in [20, 56]:
        rows.append((f"resnet{depth} train step img/s", f"gpu_resnet{depth}_train_step",
                     f"torch_resnet{depth}_train_step_fp32_cl", f"torch_resnet{depth}_train_step_bf16_cl"))
    rows.append(("IE-FT step img/s", "gpu_ieft_step", "torch_ieft_step_fp32_cl", "torch_ieft_step_bf16_cl"))
    rows.append(("resnet20 step, torch.compile fp32", "gpu_resnet20_train_step",
                 "torch_resnet20_train_step_compiled_fp32_cl", "torch_resnet20_train_step_bf16_cl"))
    print(f"{'':<34} {'iekd fp32':>10} {'torch fp32':>10} {'ratio':>6} {'torch bf16':>10} {'ratio':>6}")
    for label, a, b, c in rows:
        x, y, z = ours.get(a), torch.get(b), torch.get(c)
        cell = lambda v: f"{v:>10.0f}" if v is not None else f"{'-':>10}"
        ratio = lambda p, q: f"{p / q:>6.2f}" if p and q else f"{'-':>6}"
        print(f"{label:<34} {cell(x)} {cell(y)} {ratio(x, y)} {cell(z)} {ratio(x, z)}")
    for fmt in ["tf32", "bf16"]:
        print(f"\n{fmt.upper() + ' tensor-core convolutions':<34} {'iekd ' + fmt:>10} {'torch ' + fmt:>10} {'ratio':>6}")
        for conv in ["c1", "c2", "c3", "c4", "c5", "c6"]:
            for part in ["fwd", "bwd_data", "bwd_weight"]:
                x, y = ours.get(f"gpu_conv_{conv}_{part}_{fmt}"), torch.get(f"torch_conv_{conv}_{part}_{fmt}_cl")
                cell = lambda v: f"{v:>10.0f}" if v is not None else f"{'-':>10}"
                ratio = f"{x / y:>6.2f}" if x and y else f"{'-':>6}"
                print(f"{'conv ' + conv + ' ' + part + ' GFLOP/s':<34} {cell(x)} {cell(y)} {ratio}")
    print(f"\n{'launches per step':<34} {'iekd ran':>10} {'iekd host':>10} {'torch ran':>10}")
    for name, ours_key, torch_key in [("resnet20", "resnet20", "resnet20"), ("resnet56", "resnet56", "resnet56"),
                                      ("IE-FT", "ieft", "ieft")]:
        ran, host = ours.get(f"gpu_{ours_key}_step_launches"), ours.get(f"gpu_{ours_key}_step_host_launches")
        theirs = torch.get(f"torch_{torch_key}_step_launches")
        cell = lambda v: f"{v:>10.0f}" if v is not None else f"{'-':>10}"
        print(f"{name:<34} {cell(ran)} {cell(host)} {cell(theirs)}")
    for name in ["resnet20_train_step", "resnet56_train_step", "ieft_step"]:
        eager, graph = ours.get(f"gpu_{name}_eager"), ours.get(f"gpu_{name}")
        if eager and graph:
            print(f"{name}: {eager:.0f} img/s eager, {graph:.0f} as a graph ({graph / eager:.2f}x)")
    copy_ours, copy_torch = ours.get("gpu_copy_bw"), torch.get("torch_copy_bw")
    print(f"copy bandwidth GB/s: iekd's measurement {copy_ours}, PyTorch's {copy_torch}")
    for name in ["gpu_bn_relu_fwd", "gpu_bn_relu_bwd"]:
        if name in ours and copy_ours:
            print(f"{name}: {ours[name]:.0f} GB/s, {100 * ours[name] / copy_ours:.0f}% of copy")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
