"""`pntk plan`'s text: the per-rule table, the totals, what the output cache and a default storage provider
would move, and the notes (the numbers: pntk.plan.workflow)."""
from __future__ import annotations

import math

from .workflow import WorkflowPlan


def _si(x: float, unit: str) -> str:
    if x == 0:
        return "–"
    exp = min(max(int(math.floor(math.log10(abs(x)) / 3)), 0), 6)
    if exp < 6 and abs(float(f"{x / 10 ** (3 * exp):.3g}")) >= 1000:  # 999.6 MB prints as 1 GB, not 1e+03 MB
        exp += 1
    return f"{x / 10 ** (3 * exp):.3g} {' kMGTPE'[exp].strip()}{unit}"


def human_seconds(s: float) -> str:
    if s == 0:
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= 2 * size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


def format_plan(plan: WorkflowPlan) -> str:
    """Aligned text table per rule, then totals and notes."""
    d = plan.device
    head = ("rule", "jobs", "FLOPs", "written", "peak mem/job", "time/job", "total time", "runs on")
    rows = [head]
    for r in plan.rules:
        where = f"{d.name} GPU" if r.device == "cuda" else f"cpu × {r.threads}"
        rows.append((r.rule, f"{r.jobs:,}", _si(r.flops, "FLOP"), _si(r.bytes_written, "B"), _si(r.peak_bytes, "B"),
                     human_seconds(r.max_job_seconds), human_seconds(r.job_seconds), where if r.job_seconds else ""))
    t = plan.as_dict()
    rows.append(("total", f"{t['jobs']:,}", _si(sum(r.flops for r in plan.rules), "FLOP"),
                 _si(t["bytes_written"], "B"), "", "", human_seconds(sum(r.job_seconds for r in plan.rules)), ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [f"pntk plan: {plan.config_name} on {d.name} ({d.label})", f"rates: {d.source}"]
    for k, row in enumerate(rows):
        middle = [c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1], strict=True)]
        cells = [row[0].ljust(widths[0]), *middle, row[-1]]
        lines.append("  ".join(cells).rstrip())
        if k == 0 or k == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    gpu = f", {t['gpu_hours']:.3g} GPU-hours on {d.label}" if d.kind == "cuda" else ""
    lines += ["", f"{plan.config_name}: {_si(plan.store_bytes, 'B')} of kernel stores (uncompressed){gpu}, "
                  f"{t['cpu_core_hours']:.3g} CPU core-hours",
              f"wall ≈ {human_seconds(t['wall_seconds'])} on one {'GPU' if d.kind == 'cuda' else 'machine'} with "
              f"{plan.cores} core{'s' * (plan.cores != 1)} (stages in order, the jobs of a stage side by side)"]
    hit = plan.cache_hit()
    if hit["jobs"]:
        lines.append(f"output cache (--cache): a second workflow folder with the same runs takes {hit['jobs']:,} jobs "
                     f"({', '.join(hit['rules'])}) from the cache: {human_seconds(hit['job_seconds'])} of job time "
                     f"and {_si(hit['bytes'], 'B')} written saved")
    lines.append(f"no shared filesystem (--default-storage-provider): {_si(t['bytes_written'], 'B')} to the bucket "
                 f"(every output), {_si(t['bytes_read'], 'B')} fetched by the jobs (data, checkpoints, the stores "
                 "each reads)")
    too_big = [r.rule for r in plan.rules if r.peak_bytes > (d.memory_bytes if r.device == d.kind else float("inf"))]
    if too_big:
        lines.append(f"WARNING: peak memory above the device's {_si(d.memory_bytes, 'B')}: {', '.join(too_big)}")
    lines += [f"note: {n}" for n in plan.notes + [f"{r.rule}: {n}" for r in plan.rules for n in r.notes]]
    return "\n".join(lines)
