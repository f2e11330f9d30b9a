"""SolverOptions: the regression's solver settings as one frozen object, read once from a config; keywords to
linearized_predict replace single options; the answer is the same either way."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pntk import config as pcfg
from pntk.regression import SolverOptions, linearized_predict

REPO = Path(__file__).resolve().parents[1]


def test_from_config_reads_every_key_of_the_regression_section():
    cfg = pcfg.load_config(REPO / "configs" / "cifar10-fcn-cpu.yaml", check_files=False)["regression"]
    o = SolverOptions.from_config(cfg)
    assert (o.solver, o.ridge, o.ridge_scale, o.tol, o.rank, o.landmarks, o.device) == (
        cfg["solver"], cfg["ridge"], cfg["ridge_scale"], cfg["tol"], cfg["nystrom_rank"], cfg["nystrom_landmarks"],
        cfg["device"])
    assert o.memory_cap_bytes == int(cfg["memory_cap_gb"] * 2**30) == pcfg.memory_cap_bytes(cfg)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.ridge = 1.0  # type: ignore[misc]


def test_defaults_are_the_schemas():
    """A config that sets nothing gets SolverOptions() (but the cap, which the schema sets and the library
    leaves to the machine)."""
    cfg = pcfg.validate_config({"models": [{"arch": "fcn", "widths": [8]}]}, check_files=False)["regression"]
    assert SolverOptions.from_config(cfg).replace(memory_cap_bytes=None) == SolverOptions()


def test_keywords_replace_options_and_unknown_ones_are_named():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 30))
    k = a @ a.T + 30 * np.eye(30)  # (N, N) SPD
    kx = rng.normal(size=(5, 30))
    y = rng.normal(size=(30, 3))
    base = SolverOptions(solver="cg", tol=1e-10)
    by_options = linearized_predict(k, kx, None, None, y, options=base.replace(ridge=0.5))
    by_keyword = linearized_predict(k, kx, None, None, y, options=base, ridge=0.5)
    dense = kx @ np.linalg.solve(k + 0.5 * np.eye(30), y)
    np.testing.assert_allclose(by_options, dense, rtol=1e-7)
    np.testing.assert_array_equal(by_options, by_keyword)
    with pytest.raises(TypeError, match=r"unknown solver option\(s\) \['ridg'\]"):
        linearized_predict(k, kx, None, None, y, ridg=0.5)
