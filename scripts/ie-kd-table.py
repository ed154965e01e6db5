"""The tables of scripts/ie-kd-seeds.sh: final and best test accuracy of each recipe, mean and
sample standard deviation over seeds, and the larger-student check; with --teacher, also each
student's linear CKA to its teacher and its share of active neurons (`iekd cka` on the first 1000
test images, cached in the run's cka.json).

    python3 scripts/ie-kd-table.py OUT_DIR [--teacher MODEL] [--iekd BIN]

Reads OUT_DIR/<method>-s<seed>/metrics.jsonl (one JSON object per epoch with test_acc).
"""
import argparse
import json
import re
import statistics
import subprocess
from pathlib import Path

TEACHER_ARCH = {"": "resnet20", "big-": "resnet8"}
STUDENT_ARCH = {"": "resnet8", "big-": "resnet20"}


def cka(run, prefix, teacher, iekd):
    """(CKA to the teacher, active share of the student) of one run, computed once."""
    cache = run / "cka.json"
    if not cache.exists():
        out = subprocess.run(
            [iekd, "cka", "--a", str(run / "model.safetensors"), "--a-arch", STUDENT_ARCH[prefix],
             "--b", str(teacher), "--b-arch", TEACHER_ARCH[prefix], "--dataset", "fashion-mnist"],
            capture_output=True, text=True, check=True).stdout
        value = float(re.search(r"linear CKA ([0-9.]+)", out)[1])
        active = float(re.search(r"active neurons: a ([0-9.]+)%", out)[1])
        cache.write_text(json.dumps({"cka": value, "active": active}))
    data = json.loads(cache.read_text())
    return data["cka"], data["active"]


def runs(out):
    """{(prefix, method): {seed: (run folder, [test_acc per epoch])}} for every finished run."""
    found = {}
    for metrics in sorted(Path(out).glob("*-s*/metrics.jsonl")):
        m = re.fullmatch(r"(big-)?(.+)-s(\d+)", metrics.parent.name)
        if not m or not (metrics.parent / ".done").exists():
            continue
        accs = [json.loads(line)["test_acc"] for line in metrics.read_text().splitlines() if line.strip()]
        found.setdefault((m[1] or "", m[2]), {})[int(m[3])] = (metrics.parent, accs)
    return found


def spread(values, digits=2):
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table(found, prefix, title, order, teacher, iekd):
    rows = [(m, found[(prefix, m)]) for m in order if (prefix, m) in found]
    if not rows:
        return
    print(f"\n{title}\n")
    extra = " CKA to teacher | active % |" if teacher else ""
    print(f"| recipe | seeds | final test acc % | best test acc % | per seed (final) |{extra}")
    print("|---|---:|---:|---:|---|" + ("---:|---:|" if teacher else ""))
    for method, by_seed in rows:
        finals = [a[-1] for _, a in by_seed.values()]
        bests = [max(a) for _, a in by_seed.values()]
        per_seed = ", ".join(f"{a[-1]:.2f}" for _, (_, a) in sorted(by_seed.items()))
        cells = f"| {method} | {len(finals)} | {spread(finals)} | {spread(bests)} | {per_seed} |"
        if teacher:
            pairs = [cka(run, prefix, teacher, iekd) for run, _ in by_seed.values()]
            cells += f" {spread([c for c, _ in pairs], 3)} | {spread([a for _, a in pairs], 1)} |"
        print(cells)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--teacher", help="the ResNet-20 teacher's model file (adds CKA and active neurons)")
    ap.add_argument("--iekd", default="target/release/iekd")
    args = ap.parse_args()
    found = runs(args.out)
    small_teacher = Path(args.out) / "none-s0" / "model.safetensors"
    order = ["none", "kd", "ft", "ie-ft"]
    title = "ResNet-20 teacher -> ResNet-8 student (mean ± sample std over seeds)"
    table(found, "", title, order, args.teacher, args.iekd)
    title = "ResNet-8 teacher (plain, seed 0) -> ResNet-20 student (larger student)"
    table(found, "big-", title, ["none", "kd", "ie-ft"], args.teacher and small_teacher, args.iekd)


if __name__ == "__main__":
    main()
