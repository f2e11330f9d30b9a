"""Job plumbing: every job's log, and its torch thread count, without importing torch in torch-free jobs."""
import json
import os
import subprocess
import sys

import pntk

CHILD = r"""
import json, sys, types
from pntk.scriptutil import setup
job = types.SimpleNamespace(log=[sys.argv[1]], threads=int(sys.argv[2]), rule="probe", config={})
log = setup(job)
log.info("hello")
before = "torch" in sys.modules  # a torch-free job must not pay torch's import (≈ 4 s here)
import torch
print(json.dumps({"torch_before": before, "threads": torch.get_num_threads()}))
"""


def _probe(tmp_path, threads: int, env_threads: str | None) -> dict:
    src = os.path.dirname(os.path.dirname(pntk.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    env.pop("OMP_NUM_THREADS", None)
    if env_threads is not None:  # a value the caller's shell left behind must not win over the rule's threads
        env["OMP_NUM_THREADS"] = env_threads
    log = tmp_path / f"job-{threads}.log"
    out = subprocess.run([sys.executable, "-c", CHILD, str(log), str(threads)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "hello" in log.read_text()
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_setup_leaves_torch_unimported_and_sets_the_rules_thread_count(tmp_path):
    for threads, env_threads in [(1, None), (2, None), (1, "2"), (2, "1")]:
        r = _probe(tmp_path, threads, env_threads)
        assert r == {"torch_before": False, "threads": threads}, (threads, env_threads, r)


def test_log_to_moves_logging_and_stderr_to_the_second_rules_log(tmp_path):
    """diagnostics_regression writes diagnostics.log, then regression.log: each holds its own part."""
    code = r"""
import logging, sys, types
from pntk.scriptutil import log_to, setup
job = types.SimpleNamespace(log=[sys.argv[1], sys.argv[2]], threads=1, rule="probe", config={})
setup(job)
logging.getLogger("pntk.a").info("first part")
print("first stderr", file=sys.stderr)
log_to(sys.argv[2])
logging.getLogger("pntk.b").warning("second part")
print("second stderr", file=sys.stderr)
"""
    first, second = tmp_path / "a" / "diagnostics.log", tmp_path / "b" / "regression.log"
    out = subprocess.run([sys.executable, "-c", code, str(first), str(second)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    a, b = first.read_text(), second.read_text()
    assert "first part" in a and "first stderr" in a and "second" not in a
    assert "second part" in b and "second stderr" in b and "first" not in b
    assert "job usage" in b  # the exit line lands in the log in use at the end
