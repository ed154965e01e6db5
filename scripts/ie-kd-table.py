"""The tables of scripts/ie-kd-seeds.sh: final and best test accuracy of each recipe, mean and
sample standard deviation over seeds, and the larger-student check.

    python3 scripts/ie-kd-table.py OUT_DIR

Reads OUT_DIR/<method>-s<seed>/metrics.jsonl (one JSON object per epoch with test_acc).
"""
import json
import re
import statistics
import sys
from pathlib import Path


def runs(out):
    """{(prefix, method): {seed: [test_acc per epoch]}} for every finished run."""
    found = {}
    for metrics in sorted(Path(out).glob("*-s*/metrics.jsonl")):
        m = re.fullmatch(r"(big-)?(.+)-s(\d+)", metrics.parent.name)
        if not m or not (metrics.parent / ".done").exists():
            continue
        accs = [json.loads(line)["test_acc"] for line in metrics.read_text().splitlines() if line.strip()]
        found.setdefault((m[1] or "", m[2]), {})[int(m[3])] = accs
    return found


def spread(values):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{mean:.2f} ± {std:.2f}" if len(values) > 1 else f"{mean:.2f}"


def table(found, prefix, title, order):
    rows = [(m, found[(prefix, m)]) for m in order if (prefix, m) in found]
    if not rows:
        return
    print(f"\n{title}\n")
    print("| recipe | seeds | final test acc % | best test acc % | per seed (final) |")
    print("|---|---:|---:|---:|---|")
    for method, by_seed in rows:
        finals = [a[-1] for a in by_seed.values()]
        bests = [max(a) for a in by_seed.values()]
        per_seed = ", ".join(f"{a[-1]:.2f}" for _, a in sorted(by_seed.items()))
        print(f"| {method} | {len(finals)} | {spread(finals)} | {spread(bests)} | {per_seed} |")


def main(out):
    found = runs(out)
    order = ["none", "kd", "ft", "ie-ft"]
    table(found, "", "ResNet-20 teacher -> ResNet-8 student (mean ± sample std over seeds)", order)
    table(found, "big-", "ResNet-8 teacher -> ResNet-20 student (larger student)", ["none", "kd", "ie-ft"])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
