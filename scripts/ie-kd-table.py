"""The tables of scripts/ie-kd-protocol.sh: the validation sweep, every arm over paired seeds
(last-epoch validation and test accuracy, mean and sample standard deviation), the paired
differences between arms with 95% t-intervals, and the larger-student check. With --teacher,
also each student's linear CKA to its teacher for the whole feature and for its inheritance and
exploration channels (`iekd cka --halves` on the first 1000 test images, cached in the run's
cka.json; students without a split are cut into natural halves), and its share of active neurons.

    python3 scripts/ie-kd-table.py OUT_DIR [--teacher MODEL] [--iekd BIN] [--runs FILE]

--runs FILE also writes every finished run as one JSON line: its name, every epoch's metrics and,
when computed, its CKA figures.
"""
import argparse
import json
import re
import statistics
import subprocess
from pathlib import Path

ARCH = {"": ("resnet20", "resnet8"), "big-": ("resnet8", "resnet20")}  # (teacher, student)
ARMS = ["none", "kd", "ft", "ie-ft-exp0", "ie-ft", "od", "ie-od"]
PAIRS = [("ie-ft", "ft"), ("ie-ft", "none"), ("ie-ft", "ie-ft-exp0"), ("ie-ft", "kd"), ("ft", "none"),
         ("kd", "none"), ("ie-od", "od"), ("od", "none"), ("ie-od", "none")]
# Two-sided 97.5% quantiles of Student's t by degrees of freedom.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}


def t975(df):
    return T975.get(df) or T975[max(k for k in T975 if k <= df)]


def cka(run, prefix, teacher, iekd):
    """{cka, inh, exp, active} of one student against its teacher, computed once."""
    cache = run / "cka.json"
    if not cache.exists():
        t_arch, s_arch = ARCH[prefix]
        out = subprocess.run(
            [iekd, "cka", "--a", str(teacher), "--a-arch", t_arch, "--b", str(run / "model.safetensors"),
             "--b-arch", s_arch, "--dataset", "fashion-mnist", "--halves"],
            capture_output=True, text=True, check=True).stdout
        cache.write_text(json.dumps({
            "cka": float(re.search(r"linear CKA ([0-9.]+)", out)[1]),
            "inh": float(re.search(r"inheritance channels ([0-9.]+)", out)[1]),
            "exp": float(re.search(r"exploration channels ([0-9.]+)", out)[1]),
            "active": float(re.search(r"active neurons: a [0-9.]+%, b ([0-9.]+)%", out)[1]),
        }))
    return json.loads(cache.read_text())


def last_epochs(out, pattern):
    """{name: last metrics object} of every finished run whose folder matches `pattern`."""
    found = {}
    for metrics in sorted(Path(out).glob("*/metrics.jsonl")):
        m = re.fullmatch(pattern, metrics.parent.name)
        if m and (metrics.parent / ".done").exists():
            found[m.groups()] = (metrics.parent, json.loads(metrics.read_text().splitlines()[-1]))
    return found


def spread(values, digits=2):
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def sweep(out):
    found = last_epochs(out, r"sweep-(.+)")
    if not found:
        return
    print("\nSweep (seed 100; chosen on the last epoch's validation accuracy)\n")
    print("| run | val acc % | test acc % |")
    print("|---|---:|---:|")
    for (name,), (_, last) in sorted(found.items()):
        print(f"| {name} | {last['val_acc']:.2f} | {last['test_acc']:.2f} |")
    chosen = Path(out) / "chosen.txt"
    if chosen.exists():
        print(f"\n{chosen.read_text().strip()}")


def arms(out, prefix, title, teacher, iekd):
    found = last_epochs(out, re.escape(prefix) + r"(.+)-s(\d+)")
    by_arm = {}
    for (arm, seed), value in found.items():
        by_arm.setdefault(arm, {})[int(seed)] = value
    rows = [a for a in ARMS if a in by_arm]
    if not rows:
        return
    print(f"\n{title}\n")
    extra = " CKA to teacher | CKA inh. half | CKA expl. half | active % |" if teacher else ""
    print(f"| arm | seeds | val acc % | test acc % | test per seed |{extra}")
    print("|---|---:|---:|---:|---|" + ("---:|---:|---:|---:|" if teacher else ""))
    for arm in rows:
        runs = by_arm[arm]
        val = [last["val_acc"] for _, last in runs.values()]
        test = [last["test_acc"] for _, last in runs.values()]
        per_seed = ", ".join(f"{runs[s][1]['test_acc']:.2f}" for s in sorted(runs))
        cells = f"| {arm} | {len(test)} | {spread(val)} | {spread(test)} | {per_seed} |"
        if teacher:
            c = [cka(run, prefix, teacher, iekd) for run, _ in runs.values()]
            cells += "".join(f" {spread([x[k] for x in c], 3)} |" for k in ("cka", "inh", "exp"))
            cells += f" {spread([x['active'] for x in c], 1)} |"
        print(cells)
    print("\nPaired differences of the last-epoch test accuracy (same seeds; 95% t-interval)\n")
    print("| difference | seeds | mean | 95% interval | per seed |")
    print("|---|---:|---:|---|---|")
    for a, b in PAIRS:
        if a not in by_arm or b not in by_arm:
            continue
        seeds = sorted(set(by_arm[a]) & set(by_arm[b]))
        d = [by_arm[a][s][1]["test_acc"] - by_arm[b][s][1]["test_acc"] for s in seeds]
        if len(d) < 2:
            continue
        mean, half = statistics.fmean(d), t975(len(d) - 1) * statistics.stdev(d) / len(d) ** 0.5
        per = ", ".join(f"{x:+.2f}" for x in d)
        print(f"| {a} − {b} | {len(d)} | {mean:+.2f} | [{mean - half:+.2f}, {mean + half:+.2f}] | {per} |")


def write_runs(out, path):
    with open(path, "w") as f:
        for metrics in sorted(Path(out).glob("*/metrics.jsonl")):
            run = metrics.parent
            if not (run / ".done").exists():
                continue
            record = {"run": run.name, "epochs": [json.loads(l) for l in metrics.read_text().splitlines() if l]}
            if (run / "cka.json").exists():
                record["cka"] = json.loads((run / "cka.json").read_text())
            f.write(json.dumps(record) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--teacher", help="the ResNet-20 teacher's model file (adds CKA and active neurons)")
    ap.add_argument("--iekd", default="target/release/iekd")
    ap.add_argument("--runs", help="write every finished run as JSON lines to this file")
    args = ap.parse_args()
    sweep(args.out)
    small_teacher = Path(args.out) / "none-s0" / "model.safetensors"
    arms(args.out, "", "ResNet-20 teacher -> ResNet-8 student (mean ± sample std over seeds)",
         args.teacher, args.iekd)
    arms(args.out, "big-", "ResNet-8 teacher (plain, seed 0) -> ResNet-20 student (larger student)",
         args.teacher and small_teacher, args.iekd)
    if args.runs:
        write_runs(args.out, args.runs)


if __name__ == "__main__":
    main()
