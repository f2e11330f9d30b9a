"""How many ConvNet widths and seeds decide the width claims (Figs 2–4 at initialisation)? A power study.

    python benchmarks/study_convnet_widths.py --widths 8,16,32,64 --seeds 0,1,2,3,4,5 --out rows.jsonl
    python benchmarks/study_convnet_widths.py --rows rows.jsonl          # the power table from saved rows

Part 1 computes, for ConvNet-8 at initialisation on digits D (200 points, float64, one thread), the eNTK and
pNTK on D and the width statistics the claims test (pntk.analysis.diagnostics: off-/on-diagonal ratios,
Frobenius distance and norm difference, λmax difference; λmin of both kernels), one JSON row per (width,
seed), with the seconds it took. Part 2 draws every subset of k seeds of a width design from those rows and
runs the claims' own trend rule on it (pntk.report.decide.trend: exact within-seed permutation test, holds
at p < 0.05): the share of draws that reach "holds" is the design's power at these effect sizes. The
networks are the ones `make run` builds (pntk.models), untrained: what the width claims at epoch 0 see.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

STATISTICS = ("offdiag_ratio", "offdiag_block_ratio", "frobenius_distance", "frobenius_norm_rel_diff",
              "lambda_max_rel_diff")
DESIGNS = [(8, 16, 32), (16, 32, 64), (8, 32, 64), (8, 16, 32, 64), (16, 32, 64, 128)]


def measure(widths: list[int], seeds: list[int], out) -> None:
    import torch
    from sklearn.datasets import load_digits

    from pntk.analysis import diagnostics as dg
    from pntk.kernels import empirical_kernel
    from pntk.models import ModelSpec, init_model

    torch.set_num_threads(1)
    x, _ = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).choice(len(x), 200, replace=False)
    xd = torch.tensor((x[idx] / 16.0 - 0.3) / 0.45, dtype=torch.float64).reshape(-1, 1, 8, 8)  # (200, 1, 8, 8)
    for w in widths:
        for s in seeds:
            t0 = time.perf_counter()
            model = init_model(ModelSpec("convnet", w, (1, 8, 8), 10, depth=8), s).double()
            entk = empirical_kernel(model, xd, kind="entk")  # (200, 200, 10, 10)
            pntk = empirical_kernel(model, xd, kind="pntk")  # (200, 200)
            st = {**dg.diagonal_ratio(entk), **dg.frobenius_distance(entk, pntk), **dg.spectrum_differences(entk, pntk)}
            row = {"w": w, "s": s, "t": round(time.perf_counter() - t0, 1),
                   **{k: float(st[k]) for k in (*STATISTICS, "lambda_min_entk", "lambda_min_pntk") if k in st}}
            print(json.dumps(row), file=out, flush=True)
            print(json.dumps(row), file=sys.stderr, flush=True)


def power(rows: list[dict]) -> None:
    from pntk.report import decide

    seeds_at: dict[int, set] = {}
    for r in rows:
        seeds_at.setdefault(r["w"], set()).add(r["s"])
    print("width: median of each statistic over seeds; λmin(Θ) range")
    for w in sorted(seeds_at):
        rr = [r for r in rows if r["w"] == w]
        med = ", ".join(f"{k} {statistics.median(r[k] for r in rr):.3f}" for k in STATISTICS)
        lmin = [r["lambda_min_entk"] for r in rr]
        print(f"  w{w} ({len(rr)} seeds, {statistics.median(r['t'] for r in rr):.0f} s each): {med}; "
              f"λmin(Θ) {min(lmin):.2g}…{max(lmin):.2g}")
    print("\nshare of seed draws where the width trend holds (p < 0.05), per statistic")
    for design in DESIGNS:
        common = sorted(set.intersection(*[seeds_at.get(w, set()) for w in design]))
        for k in (2, 3, 4, 6):
            draws = list(itertools.combinations(common, k))
            if not draws:
                continue
            share = {}
            for st in STATISTICS:
                held = 0
                for draw in draws:
                    sel = [r for r in rows if r["w"] in design and r["s"] in draw]
                    d = decide.trend([r["w"] for r in sel], [r[st] for r in sel], [r["s"] for r in sel], -1,
                                     what="convnet")
                    held += d.verdict == decide.HOLDS
                share[st] = held / len(draws)
            print(f"  widths {'/'.join(map(str, design))} × {k} seeds ({len(draws)} draws of {len(common)}): "
                  + ", ".join(f"{st} {v:.2f}" for st, v in share.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--widths", default="8,16,32,64")
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--out", help="append the measured rows (JSON lines) here")
    ap.add_argument("--rows", help="skip the measurement: the power table of these saved rows")
    args = ap.parse_args()
    if not args.rows:
        out_path = Path(args.out or "convnet_widths.jsonl")
        with out_path.open("a") as out:
            measure([int(w) for w in args.widths.split(",")], [int(s) for s in args.seeds.split(",")], out)
        args.rows = str(out_path)
    power([json.loads(line) for line in Path(args.rows).read_text().splitlines() if line.strip()])


if __name__ == "__main__":
    main()
