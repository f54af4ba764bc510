#!/usr/bin/env python3
"""Print the benchmark results table (Markdown) from criterion's output.

Reads target/criterion/**/new/benchmark.json and estimates.json (medians, in ns) written by
`cargo bench -p claimgate-benches --bench peers --bench full_path --bench scale --bench verify`,
plus target/criterion/claimgate-memory.json written by the scale benchmark, and prints the
tables pasted into benches/README.md.

Usage: python3 benches/results.py [TARGET_DIR]   (default: the workspace's target/)
"""

import json
import os
import pathlib
import platform
import sys


def load(root):
    """{(group, function): median_ns} for every benchmark criterion has results for."""
    out = {}
    for bench in root.glob("**/new/benchmark.json"):
        est = bench.with_name("estimates.json")
        if not est.exists():
            continue
        meta = json.loads(bench.read_text())
        median = json.loads(est.read_text())["median"]["point_estimate"]
        function = meta.get("function_id") or ""
        if meta.get("value_str"):
            function = f"{function}/{meta['value_str']}" if function else meta["value_str"]
        out[(meta["group_id"], function)] = median
    return out


def fmt(ns):
    if ns is None:
        return "–"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}x"


def cpu():
    model = platform.processor() or "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return model, os.cpu_count()


def main():
    here = pathlib.Path(__file__).resolve().parent
    target = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "target"
    root = target / "criterion"
    r = load(root)
    get = lambda g, f: r.get((g, f))  # noqa: E731
    goals = []

    model, cores = cpu()
    print(f"CPU: {model}, {cores} cores (os.cpu_count). Medians of criterion's samples; ratios from the same run.\n")

    # Claim matching against the peers.
    peers = ["claimgate", "hand-written", "regorus", "regorus-interp", "cel", "cedar"]
    print("### Claim matching (payload bytes to decision)\n")
    print("| role | " + " | ".join(peers) + " | claimgate / floor | fastest of regorus, cel, cedar / claimgate |")
    print("|---|" + "---:|" * (len(peers) + 2))
    for scenario in ["gitlab", "github", "kubernetes"]:
        g = f"peers/{scenario}"
        m = {p: get(g, p) for p in peers}
        if m["claimgate"] is None:
            continue
        rivals = [m[p] for p in ["regorus", "cel", "cedar"] if m[p] is not None]
        fastest = min(rivals) if rivals else None
        print(
            f"| {scenario} | "
            + " | ".join(fmt(m[p]) for p in peers)
            + f" | {ratio(m['claimgate'], m['hand-written'])} | {ratio(fastest, m['claimgate'])} |"
        )
        if m["hand-written"]:
            x = m["claimgate"] / m["hand-written"]
            goals.append((f"claim matching {scenario}: claimgate ≤ 1.5x floor", f"{x:.2f}x", x <= 1.5))
        if fastest:
            x = fastest / m["claimgate"]
            goals.append((f"claim matching {scenario}: ≥ 5x faster than fastest peer", f"{x:.1f}x", x >= 5))
    print()
    print("Per peer, times slower than claimgate:\n")
    print("| role | hand-written | regorus | regorus-interp | cel | cedar |")
    print("|---|---:|---:|---:|---:|---:|")
    for scenario in ["gitlab", "github", "kubernetes"]:
        g = f"peers/{scenario}"
        base = get(g, "claimgate")
        if base is None:
            continue
        print(
            f"| {scenario} | "
            + " | ".join(ratio(get(g, p), base) for p in ["hand-written", "regorus", "regorus-interp", "cel", "cedar"])
            + " |"
        )
    print()

    # Full path.
    print("### Full path (signature, then claims)\n")
    parts = any(g.startswith("full_path/") and f == "claimgate decide only" for (g, f) in r)
    print(
        "| alg | claimgate | jsonwebtoken | ring floor | claimgate / ring | jsonwebtoken / claimgate "
        + ("| claimgate verify only | claimgate decide only |" if parts else "|")
    )
    print("|---|" + "---:|" * (7 if parts else 5))
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"]:
        g = f"full_path/{alg}"
        cg, jwt, ring = get(g, "claimgate"), get(g, "jsonwebtoken"), get(g, "ring floor")
        if cg is None:
            continue
        print(
            f"| {alg} | {fmt(cg)} | {fmt(jwt)} | {fmt(ring)} | {ratio(cg, ring)} | {ratio(jwt, cg)} |"
            + (
                f" {fmt(get(g, 'claimgate verify only'))} | {fmt(get(g, 'claimgate decide only'))} |"
                if parts
                else ""
            )
        )
        if ring:
            goals.append((f"full path {alg}: ≤ 1.1x ring", f"{cg / ring:.3f}x", cg / ring <= 1.1))
    print()

    # Signature alone (verify.rs).
    rows = []
    for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"]:
        g = f"verify/{alg}"
        cg = next((v for (gg, f), v in r.items() if gg == g and f.startswith("claimgate (")), None)
        if cg is not None:
            rows.append(
                f"| {alg} | {fmt(cg)} | {fmt(get(g, 'ring floor'))} | {ratio(cg, get(g, 'ring floor'))} | "
                f"{fmt(get(g, 'claimgate decode only (no crypto)'))} |"
            )
    if rows:
        print("Signature alone (`verify.rs`):\n")
        print("| alg | claimgate verify | ring floor | ratio | decode only |")
        print("|---|---:|---:|---:|---:|")
        print("\n".join(rows))
        print()

    # Scale.
    memory = {}
    mem_file = root / "claimgate-memory.json"
    if mem_file.exists():
        memory = {row["roles"]: row for row in json.loads(mem_file.read_text())}
    print("### Scale (generated rich roles, up to 100 issuers)\n")
    print(
        "| roles | compile | parse + check + compile | named | automatic | automatic / named "
        "| automatic / named (1 role) | automatic, one shared audience | heap per role | file per role |"
    )
    print("|---:|" + "---:|" * 9)
    one_named = get("scale/eval-1", "named")
    for n in [1, 100, 1000, 10000]:
        g = f"scale/eval-{n}"
        named, auto = get(g, "named"), get(g, "automatic")
        if named is None and get("scale/compile", str(n)) is None:
            continue
        mem = memory.get(n, {})
        print(
            f"| {n:,} | {fmt(get('scale/compile', str(n)))} | {fmt(get('scale/load', str(n)))} | {fmt(named)} "
            f"| {fmt(auto)} | {ratio(auto, named)} | {ratio(auto, one_named)} "
            f"| {fmt(get(g, 'automatic-shared-audience'))} "
            f"| {str(mem.get('heap_bytes_per_role', '–')) + ' B' if mem else '–'} "
            f"| {str(mem.get('file_bytes_per_role', '–')) + ' B' if mem else '–'} |"
        )
    auto10k = get("scale/eval-10000", "automatic")
    if auto10k and one_named:
        goals.append(("automatic among 10,000 < 2x a single named role", f"{auto10k / one_named:.2f}x", auto10k / one_named < 2))
    print()

    if goals:
        print("### Goals\n")
        print("| goal | measured | met |")
        print("|---|---:|---|")
        for goal, value, ok in goals:
            print(f"| {goal} | {value} | {'yes' if ok else '**no**'} |")


if __name__ == "__main__":
    main()
