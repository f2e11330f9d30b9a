"""Check a plan against a finished run: planned vs measured seconds per rule (`pntk plan --compare LOG`).

    job_durations(log_text)    {rule: [seconds per job]} from .snakemake/log/*.snakemake.log
    compare(plan, durations)   planned vs measured seconds per rule (`pntk plan --compare LOG`)

The log stamps each job's start ("[date]" then "rule X:"/"localrule X:" ... "jobid: N") and its end
("[date]" then "Finished jobid: N (Rule: X)") to the second.
"""
from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

from .text import human_seconds
from .workflow import WorkflowPlan

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)")
TOLERANCE = 0.5  # the plan's time per rule should lie within ±50 % of the measured one


def job_durations(log_text: str) -> dict[str, list[float]]:
    """Wall seconds of every finished job of a Snakemake log, by rule."""
    stamp, started, pending, out = None, {}, None, defaultdict(list)
    for line in log_text.splitlines():
        if m := _STAMP.match(line):
            stamp = time.mktime(time.strptime(m[1], "%a %b %d %H:%M:%S %Y"))
        elif m := _START.match(line):
            pending = (m[1], stamp)
        elif (m := _JOBID.match(line)) and pending:
            started[int(m[1])], pending = pending, None
        elif (m := _FINISHED.match(line)) and int(m[1]) in started:
            rule, t0 = started.pop(int(m[1]))
            out[rule].append(stamp - t0)
    return dict(out)


def pick_log(paths: list[Path]) -> tuple[tuple[Path, dict[str, list[float]]], str]:
    """((log, its job durations), why this one) of the logs given: the newest holding finished jobs
    (Snakemake names its logs by start time; `make run` writes two, the second for --report, without jobs)."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"--compare {' '.join(missing)}: no such file "
                                "(expected .snakemake/log/*.snakemake.log)")
    with_jobs = [(p, d) for p in sorted(paths, key=lambda p: p.name) if (d := job_durations(p.read_text()))]
    if not with_jobs:
        raise FileNotFoundError(f"--compare: no finished job in {', '.join(map(str, paths))}")
    why = f" (of the {len(paths)} logs given, the newest with finished jobs)" if len(paths) > 1 else ""
    return with_jobs[-1], why


def compare(plan: WorkflowPlan, durations: dict[str, list[float]]) -> list[dict]:
    """Per rule: planned and measured job-seconds (summed over jobs) and their ratio. Snakemake stamps
    whole seconds, so each job's measured time is off by < 1 s: a rule is within the tolerance if its plan
    lies within ±TOLERANCE of some value in [measured − jobs, measured + jobs] (a job logged as 0 s took
    up to 1 s; for jobs of minutes this is the plain ±TOLERANCE)."""
    rows = []
    for r in plan.rules:
        measured = durations.get(r.rule, [])
        if not r.job_seconds or not measured:
            continue
        total, jobs = sum(measured), len(measured)
        ratio = r.job_seconds / total if total else float("inf")
        lo, hi = max(total - jobs, 0.0), total + jobs
        rows.append({"rule": r.rule, "jobs_planned": r.jobs, "jobs_measured": jobs,
                     "planned_s": r.job_seconds, "measured_s": total, "ratio": ratio,
                     "within": (1 - TOLERANCE) * lo <= r.job_seconds <= (1 + TOLERANCE) * hi})
    return rows


def format_comparison(rows: list[dict]) -> str:
    head = ("rule", "jobs (plan/log)", "planned", "measured", "plan/measured", f"within ±{TOLERANCE:.0%} (±1 s/job)")
    table = [head] + [(r["rule"], f"{r['jobs_planned']}/{r['jobs_measured']}", human_seconds(r["planned_s"]),
                       human_seconds(r["measured_s"]) if r["measured_s"] else "< 1 s",
                       f"{r['ratio']:.2f}" if r["measured_s"] else "–", "yes" if r["within"] else "NO")
                      for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in table]
    return "\n".join(lines[:1] + ["  ".join("-" * w for w in widths)] + lines[1:])
