#!/usr/bin/env python3
"""PyTorch/cuDNN reference figures for the crate's CUDA benchmark table.

Run it on the GPU machine in the same run as the crate's own kernels, so that the table can
quote ratios measured under the same conditions. Sections (batch 128 by default):
  conv   : the six distinct 3x3 convolutions of ResNet-20, forward, backward-data and
           backward-weight, GFLOP/s with 2*N*Ho*Wo*Cout*Cin*9 FLOPs for each of the three;
           modes fp32 NCHW, fp32 channels_last, tf32 channels_last, bf16 channels_last
  train  : ResNet-20 and ResNet-56 training step (forward, cross-entropy, backward, SGD lr 0.1,
           momentum 0.9, Nesterov, weight decay 5e-4), images/s; fp32 NCHW, fp32 channels_last,
           bf16 autocast channels_last
  ieft   : IE-FT step: frozen ResNet-56 teacher + frozen Coder(64, 32) encoder, ResNet-20
           student whose last group output is split into channel halves, each through its own
           Coder(32, 32); CE + 500 * L_inh + 50 * L_exp; backward; one SGD step; images/s
  ceiling: device-to-device copy bandwidth (GB/s, bytes read + bytes written), large fp32
           (TF32 off) and bf16 matmul TFLOP/s

"fp32" always means TF32 disabled (cuBLAS and cuDNN). cudnn.benchmark is on. Each case is warmed
up, then timed per sample with CUDA events (one synchronisation per sample); a conv sample
averages `reps` back-to-back calls so launch latency does not dominate microsecond kernels.
Figures are medians over the samples.

Usage:
  python scripts/torch_gpu_reference.py [--batch 128] [--json torch_gpu.json]
  python scripts/torch_gpu_reference.py --device cpu --quick --batch 8      # smoke test
Ends with one `BENCH torch_<name> <value> <unit>` line per figure.
"""
import argparse
import contextlib
import json
import platform
import statistics
import sys
import time
import warnings

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"PyTorch is not importable ({e}); nothing measured.")
    sys.exit(2)

from cifar_block import BasicBlock  # noqa: E402

# (key, cin, cout, H_in, stride)
CONV_SHAPES = [("c1", 3, 16, 32, 1), ("c2", 16, 16, 32, 1), ("c3", 16, 32, 32, 2),
               ("c4", 32, 32, 16, 1), ("c5", 32, 64, 16, 2), ("c6", 64, 64, 8, 1)]
# mode name -> (dtype, channels_last, tf32)
CONV_MODES = {"fp32_nchw": (torch.float32, False, False), "fp32_cl": (torch.float32, True, False),
              "tf32_cl": (torch.float32, True, True), "bf16_cl": (torch.bfloat16, True, False)}
TRAIN_MODES = {"fp32_nchw": (False, False), "fp32_cl": (True, False), "bf16_cl": (True, True)}
LAMBDA_INH, LAMBDA_EXP = 500.0, 50.0


# ---------------------------------------------------------------- timing and settings
class Timer:
    """Median seconds per call of a function, with warm-up; CUDA events on a GPU."""

    def __init__(self, device, warmup, iters, reps=1):
        self.device, self.warmup, self.iters, self.reps = device, warmup, iters, reps

    def __call__(self, fn, reps=None):
        reps = reps or self.reps
        for _ in range(self.warmup):
            fn()
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        samples = []
        for _ in range(self.iters):
            if cuda:
                start.record()
                for _ in range(reps):
                    fn()
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end) / 1e3 / reps)
            else:
                t0 = time.perf_counter()
                for _ in range(reps):
                    fn()
                samples.append((time.perf_counter() - t0) / reps)
        return statistics.median(samples)


@contextlib.contextmanager
def tf32(enabled):
    """Allow or forbid TF32 in cuDNN convolutions and cuBLAS matmuls inside the block."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def to_format(t, channels_last):
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t.contiguous()


# ---------------------------------------------------------------- models
class CifarResNet(nn.Module):
    """ResNet-(6n+2): stem conv 3->16, groups of n blocks at 16/32/64 channels, GAP, linear."""

    def __init__(self, depth, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        """Returns (logits, last group output) -- the feature that IE-KD distils."""
        f = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(f, 1).flatten(1)), f


def coder(cin, cout):
    """Factor encoder: LReLU, then conv(cin->cin), conv(cin->cout), conv(cout->cout), each
    3x3 s1 p1 without bias and followed by BN and LeakyReLU(0.1)."""
    layers = [nn.LeakyReLU(0.1)]
    for a, b in ((cin, cin), (cin, cout), (cout, cout)):
        layers += [nn.Conv2d(a, b, 3, 1, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


def factor_distance(x, r):
    """mean |phi(x) - phi(r)|, phi = per-sample L2 normalisation over C*H*W (in fp32)."""
    return (F.normalize(x.float().flatten(1)) - F.normalize(r.float().flatten(1))).abs().mean()


def sgd(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)


def batch_data(args, dev, channels_last):
    torch.manual_seed(0)
    x = to_format(torch.randn(args.batch, 3, 32, 32, device=dev), channels_last)
    return x, torch.randint(0, 10, (args.batch,), device=dev)


def place(m, dev, channels_last):
    """Moves a module to the device, in channels_last memory format if asked."""
    m = m.to(dev)
    return m.to(memory_format=torch.channels_last) if channels_last else m


# ---------------------------------------------------------------- sections
def bench_conv(args, dev, timer, figs):
    """GFLOP/s of forward, backward-data and backward-weight for each ResNet-20 conv shape."""
    n = args.batch
    for mode, (dtype, cl, allow_tf32) in CONV_MODES.items():
        print(f"\nconv GFLOP/s, {mode}, batch {n}")
        print(f"  {'shape':<22} {'fwd':>9} {'bwd-data':>9} {'bwd-wgt':>9} {'fwd us':>8}")
        for key, cin, cout, h, s in CONV_SHAPES:
            ho = (h + 2 - 3) // s + 1
            flops = 2.0 * n * ho * ho * cout * cin * 9
            x = to_format(torch.randn(n, cin, h, h, device=dev, dtype=dtype), cl)
            w = to_format(torch.randn(cout, cin, 3, 3, device=dev, dtype=dtype) * 0.1, cl)
            with tf32(allow_tf32), torch.no_grad():
                gy = torch.randn_like(F.conv2d(x, w, None, s, 1))

                def bwd(mask):
                    return lambda: torch.ops.aten.convolution_backward(
                        gy, x, w, None, (s, s), (1, 1), (1, 1), False, (0, 0), 1, mask)

                t_f = timer(lambda: F.conv2d(x, w, None, s, 1))
                t_d = timer(bwd((True, False, False)))
                t_w = timer(bwd((False, True, False)))
            vals = [flops / t / 1e9 for t in (t_f, t_d, t_w)]
            label = f"{key} {cin}->{cout} {h}->{ho} s{s}"
            print(f"  {label:<22} {vals[0]:>9.1f} {vals[1]:>9.1f} {vals[2]:>9.1f} {t_f * 1e6:>8.1f}")
            for op, v in zip(("fwd", "bwd_data", "bwd_weight"), vals):
                figs.append((f"torch_conv_{key}_{op}_{mode}", v, "GFLOP/s"))


def launches_per_step(step, dev):
    """The operations (kernels, copies, fills) the GPU ran in one step, from the profiler's
    device events; None on the CPU or where the profiler fails."""
    if dev.type != "cuda":
        return None
    try:
        from torch.profiler import ProfilerActivity, profile
        step()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step()
            torch.cuda.synchronize()
        return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    except Exception as e:  # the profiler depends on CUPTI being usable
        print(f"  launch count skipped ({type(e).__name__}: {str(e).splitlines()[0][:100]})")
        return None


def bench_train(args, dev, timer, figs):
    """Images/s of a full ResNet training step per depth and numeric mode."""
    print(f"\ntraining step (fwd, CE, bwd, SGD nesterov), batch {args.batch}, img/s")
    print(f"  {'model':<10} " + " ".join(f"{m:>11}" for m in TRAIN_MODES) + "   (ms/step)")
    for depth in (20, 56):
        row = []
        for mode, (cl, bf16) in TRAIN_MODES.items():
            x, y = batch_data(args, dev, cl)
            net = place(CifarResNet(depth), dev, cl).train()
            opt = sgd(net.parameters())

            def step():
                opt.zero_grad(set_to_none=True)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = F.cross_entropy(net(x)[0], y)
                loss.backward()
                opt.step()

            t = timer(step, reps=1)
            row.append((args.batch / t, t))
            figs.append((f"torch_resnet{depth}_train_step_{mode}", args.batch / t, "img/s"))
            if mode == "fp32_cl" and (n := launches_per_step(step, dev)) is not None:
                figs.append((f"torch_resnet{depth}_step_launches", n, "count"))
        print(f"  ResNet-{depth:<3} " + " ".join(f"{v:>11.1f}" for v, _ in row)
              + "   (" + ", ".join(f"{t * 1e3:.2f}" for _, t in row) + ")")
    if args.compile:
        bench_compiled(args, dev, timer, figs)


def bench_compiled(args, dev, timer, figs):
    """The ResNet-20 step (fp32, channels_last) with the model through torch.compile, where it
    works (it needs a working Triton); a failure is reported and skipped."""
    x, y = batch_data(args, dev, True)
    net = place(CifarResNet(20), dev, True).train()
    opt = sgd(net.parameters())
    try:
        compiled = torch.compile(net)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(compiled(x)[0], y).backward()
            opt.step()

        t = timer(step, reps=1)
    except Exception as e:  # torch.compile fails in many environment-specific ways
        print(f"  torch.compile: skipped ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
        return
    print(f"  ResNet-20  torch.compile fp32_cl {args.batch / t:>10.1f} img/s   ({t * 1e3:.2f} ms/step)")
    figs.append(("torch_resnet20_train_step_compiled_fp32_cl", args.batch / t, "img/s"))


def bench_ieft(args, dev, timer, figs):
    """Images/s of the IE-FT step: ResNet-56 teacher + encoder frozen, ResNet-20 student and
    its two half-channel encoders trained with CE + lambda_inh*L_inh + lambda_exp*L_exp."""
    print(f"\nIE-FT step (ResNet-56 -> ResNet-20, lambda_inh {LAMBDA_INH:g}, "
          f"lambda_exp {LAMBDA_EXP:g}), batch {args.batch}")
    for mode, bf16 in (("fp32_cl", False), ("bf16_cl", True)):
        x, y = batch_data(args, dev, True)
        teacher = place(CifarResNet(56), dev, True).eval()
        enc_t = place(coder(64, 32), dev, True).eval()
        student = place(CifarResNet(20), dev, True).train()
        enc_inh = place(coder(32, 32), dev, True).train()
        enc_exp = place(coder(32, 32), dev, True).train()
        opt = sgd([*student.parameters(), *enc_inh.parameters(), *enc_exp.parameters()])
        amp = lambda: torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)

        def step():
            with torch.no_grad(), amp():
                r_t = enc_t(teacher(x)[1])
            opt.zero_grad(set_to_none=True)
            with amp():
                logits, f = student(x)
                half = f.shape[1] // 2
                l_inh = factor_distance(enc_inh(f[:, :half]), r_t)
                l_exp = -factor_distance(enc_exp(f[:, half:]), r_t)
                loss = F.cross_entropy(logits, y) + LAMBDA_INH * l_inh + LAMBDA_EXP * l_exp
            loss.backward()
            opt.step()

        t = timer(step, reps=1)
        print(f"  {mode:<8} {args.batch / t:>10.1f} img/s   ({t * 1e3:.2f} ms/step)")
        figs.append((f"torch_ieft_step_{mode}", args.batch / t, "img/s"))
        if mode == "fp32_cl" and (n := launches_per_step(step, dev)) is not None:
            figs.append(("torch_ieft_step_launches", n, "count"))


def bench_ceilings(args, dev, timer, figs):
    """Copy bandwidth and large matmul throughput of the device, for context."""
    big = dev.type == "cuda" and not args.quick
    numel, n = (1 << 28, 8192) if big else (1 << 22, 512)
    print("\ndevice ceilings")
    src = torch.randn(numel, device=dev)
    dst = torch.empty_like(src)
    t = timer(lambda: dst.copy_(src), reps=1)
    bw = 2 * numel * 4 / t / 1e9
    print(f"  copy {numel * 4 >> 20} MiB (read + write)  {bw:>10.1f} GB/s")
    figs.append(("torch_copy_bw", bw, "GB/s"))
    del src, dst
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n, device=dev, dtype=dtype)
        b = torch.randn(n, n, device=dev, dtype=dtype)
        with tf32(False):
            t = timer(lambda: torch.mm(a, b), reps=1)
        tf = 2.0 * n ** 3 / t / 1e12
        label = f"matmul {name} {n}^3" + (" (TF32 off)" if name == "fp32" else "")
        print(f"  {label:<28} {tf:>10.2f} TFLOP/s")
        figs.append((f"torch_matmul_{name}", tf, "TFLOP/s"))


# ---------------------------------------------------------------- driver
def device_name(dev):
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        return f"{p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs"
    try:
        with open("/proc/cpuinfo") as f:
            model_line = next(l for l in f if l.startswith("model name"))
        cpu = model_line.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    return f"CPU {cpu}, {torch.get_num_threads()} threads"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--quick", action="store_true", help="tiny iteration counts (smoke test)")
    ap.add_argument("--what", default="conv,train,ieft,ceiling", help="comma-separated sections")
    ap.add_argument("--json", metavar="FILE", help="write the figures as [{name, value, unit}]")
    ap.add_argument("--compile", action="store_true", help="also time the ResNet-20 step through torch.compile")
    args = ap.parse_args()

    if args.device == "cuda":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = torch.cuda.is_available()
        if not ok:
            print(f"no CUDA device available to torch {torch.__version__} "
                  f"(built for CUDA {torch.version.cuda}); use --device cpu for a smoke test")
            sys.exit(2)
    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}")
    print(f"device: {device_name(dev)}")
    if args.quick:
        conv_timer = train_timer = Timer(dev, 1, 2)
    else:
        reps = 10 if dev.type == "cuda" else 1
        conv_timer, train_timer = Timer(dev, 10, 30, reps), Timer(dev, 10, 30)

    figs = []
    what = set(args.what.split(","))
    if "conv" in what:
        bench_conv(args, dev, conv_timer, figs)
    if "train" in what:
        bench_train(args, dev, train_timer, figs)
    if "ieft" in what:
        bench_ieft(args, dev, train_timer, figs)
    if "ceiling" in what:
        bench_ceilings(args, dev, train_timer, figs)

    print()
    for name, value, unit in figs:
        print(f"BENCH {name} {value:.1f} {unit}" if value >= 1 else f"BENCH {name} {value:.4g} {unit}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dict(name=k, value=v, unit=u) for k, v, u in figs], f, indent=1)
        print(f"wrote {len(figs)} figures to {args.json}")


if __name__ == "__main__":
    main()
