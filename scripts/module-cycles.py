#!/usr/bin/env python3
"""Reports the import cycles between the crate's top-level modules.

An edge a -> b is counted whenever a file under src/a (or src/a.rs) names `crate::b`, in code,
tests or doc links alike. Each strongly connected group of more than one module is a cycle; it is
printed with the files behind each of its edges. Exits 1 when there is a cycle, 0 otherwise.

    python3 scripts/module-cycles.py [SRC_DIR]
"""
import collections
import os
import re
import sys
from pathlib import Path


def edges(src):
    """{(a, b): [files]} for every crate::b named under top-level module a."""
    found = collections.defaultdict(set)
    for path in src.rglob("*.rs"):
        rel = path.relative_to(src)
        top = rel.parts[0].removesuffix(".rs")
        if top in ("lib", "main"):
            continue
        for b in set(re.findall(r"crate::(\w+)", path.read_text())):
            if b != top:
                found[(top, b)].add(str(rel))
    return found


def cycles(graph):
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    src = Path(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src"))
    found = edges(src)
    graph = collections.defaultdict(set)
    for a, b in found:
        graph[a].add(b)
        graph[b]
    groups = cycles(graph)
    for group in groups:
        print(f"cycle through {len(group)} modules: {', '.join(group)}")
        for a in group:
            for b in sorted(graph[a] & set(group)):
                print(f"  {a} -> {b}: {', '.join(sorted(found[(a, b)]))}")
    if not groups:
        print(f"no cycle between the {len(graph)} top-level modules")
    return 1 if groups else 0


if __name__ == "__main__":
    sys.exit(main())
