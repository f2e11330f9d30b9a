"""benchmarks/device_check.sh at its smallest (--dry --tiny, this CPU): every step must pass, so a change
elsewhere (a schema minimum, a benchmark's arithmetic at tiny sizes) cannot leave a lent GPU's 15 minutes to a
broken step. Runs the real workflow (synthetic CIFAR-10, 120/40 images) and every benchmark the script runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_device_check_tiny_dry_run_passes_every_step(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "CORES": "2", "BUDGET_S": "1500"}
    env.pop("PNTK_CACHE_DIR", None)
    env["HOME"] = str(tmp_path / "home")  # a GPU record must never land in the user's cache from a dry run
    proc = subprocess.run(["bash", "benchmarks/device_check.sh", "--dry", "--tiny"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1800)
    steps = [line.split("\t") for line in (tmp_path / "out" / "steps.tsv").read_text().splitlines()]
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = [s[0] for s in steps]
    for expected in ("machine", "tf32", "pytest_gpu", "rate", "conv", "regression", "workflow", "plan_vs_run",
                     "bench_kernels", "bench_regression"):
        assert expected in names, f"step {expected} did not run: {names}"
    failed = {s[0]: (s[1], s[3] if len(s) > 3 else "") for s in steps if s[1] != "ok"}
    logs = {n: (tmp_path / "out" / "logs" / f"{n}.log").read_text()[-1500:] for n in failed}
    assert not failed, f"steps not ok: {failed}\n{logs}"
    measured = json.loads((tmp_path / "out" / "measured.json").read_text())
    assert {"kernel_efficiency", "conv", "regression", "regression_resident_bps"} <= set(measured)
    assert not (tmp_path / "home" / ".cache" / "pntk").exists()  # --dry: nothing recorded for pntk plan
    section = (tmp_path / "out" / "section.md").read_text()
    assert "| workflow | ok |" in section and "Planned vs measured" in section
