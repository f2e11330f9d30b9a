"""diagnostics.at_init: networks at initialisation only. Their statistics on D equal those a checkpoint's
diagnostics compute from its stores at epoch 0 (same seed, same network), the config says which networks are
left to compute, and their table rows join the width claims' epoch-0 rows without a train log."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pntk import config as pcfg
from pntk import kernel_jobs
from pntk.analysis import at_init_job, write_diagnostics
from pntk.analysis.diagnostics import kernel_statistics
from pntk.data import open_prepared
from pntk.models import ModelSpec
from pntk.report import tables
from pntk.runs import Run
from pntk.store.paths import StorePaths
from pntk.train import TrainConfig, train_run

REPO = Path(__file__).resolve().parents[1]
DATA_CFG = {"subset_train": 12, "subset_test": 6, "seed": 0}
# One tile on D, as in the default (a tiling rounds differently, and λmin of a singular Θ is round-off).
KERNELS = {"tile_size": 64,
           "dtype": "float64", "method": "auto", "batch_size": None, "device": "cpu"}
STORES = [("entk", "sub-train", "sub-train"), ("entk", "sub-test", "sub-train"), ("pntk", "sub-train", "sub-train"),
          ("pntk", "sub-test", "sub-train")]  # the order of DIAGNOSTIC_STORES: entk_dd, entk_xd, pntk_dd, pntk_xd
ENTRIES = {"fcn": {"arch": "fcn", "depth": 2, "name": "fcn"},
           "convnet": {"arch": "convnet", "depth": 3, "name": "convnet"}}


@pytest.mark.parametrize("arch, width, seed", [("fcn", 8, 3), ("convnet", 4, 1)])
def test_statistics_equal_epoch_zero_of_a_network_trained_on_D(arch, width, seed, small_digits_store, tmp_path,
                                                              one_thread):
    """The same seed builds the same network: at_init_job's statistics are those of the epoch-0 checkpoint's
    diagnostics, computed the long way (train_run's checkpoint, tiled stores on disk, write_diagnostics)."""
    data = open_prepared(small_digits_store)
    entry = ENTRIES[arch]
    spec = ModelSpec.from_entry(entry, width, data.in_shape, data.num_classes)
    tr, te = data.train_indices, data.test_indices
    (checkpoint,) = train_run(spec, seed, data.x[tr], data.y[tr], data.x[te], data.y[te],
                              TrainConfig(epochs=0, checkpoint_epochs=(0,), batch_size=32),
                              tmp_path / "runs" / "digits" / f"{arch}-w{width}-s{seed}-onD",
                              extra_meta={"data_fingerprint": data.fingerprint})
    epoch_dir = tmp_path / "epoch000"
    manifests = [str(StorePaths.in_epoch(epoch_dir, *s).manifest) for s in STORES]
    kernel_jobs.checkpoint_job(manifests, STORES, data_path=small_digits_store, checkpoint=checkpoint,
                               kernels_cfg=KERNELS, data_cfg=DATA_CFG)
    trained = write_diagnostics(tmp_path / "diagnostics.json", data_path=small_digits_store, checkpoint=checkpoint,
                                manifests=dict(zip(("entk_dd", "entk_xd", "pntk_dd", "pntk_xd"), manifests)),
                                data_cfg=DATA_CFG, regression_cfg=pcfg.validate_config(
                                    {"models": [{"arch": "fcn", "widths": [8]}]}, check_files=False)["regression"])

    out = tmp_path / "at_init.json"
    res = at_init_job(out, [Run("digits", arch, width, seed, "init")], data_path=small_digits_store,
                      data_cfg=DATA_CFG, kernels_cfg=KERNELS, model_entry=entry)
    (net,) = json.loads(out.read_text())["networks"]
    assert net["meta"] == {"dataset": "digits", "arch": arch, "width": width, "seed": seed, "trained_on": "init",
                           "epoch": 0}
    assert set(net["stats"]) == set(res["networks"][0]["stats"])
    on_d = set(kernel_statistics(np.ones((2, 2, 2, 2)), np.ones((2, 2))))  # the statistics of D alone
    assert set(net["stats"]) == on_d
    for k in on_d:
        np.testing.assert_allclose(net["stats"][k], trained["stats"][k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_at_init_job_refuses_a_trained_run(small_digits_store, tmp_path):
    with pytest.raises(ValueError, match="not a network at initialisation"):
        at_init_job(tmp_path / "x.json", [Run("digits", "fcn", 8, 0, "D")], data_path=small_digits_store,
                    data_cfg=DATA_CFG, kernels_cfg=KERNELS, model_entry=ENTRIES["fcn"])


def _default() -> dict:
    return pcfg.load_config(REPO / "config.yaml", check_files=False)


def test_networks_at_init_leave_out_what_the_diagnostics_runs_have():
    cfg = _default()
    cfg["diagnostics"]["at_init"] = {"seeds": [0, 1, 2], "widths": {"convnet": [16, 64]}}
    cells = pcfg.networks_at_init(cfg)
    # seeds 0, 1 of width 16 are the default's ConvNets trained on D: their epoch 0 is that network
    assert {k: [r.seed for r in v] for k, v in cells.items()} == {("convnet", 16): [2], ("convnet", 64): [0, 1, 2]}
    assert all(r.trained_on == "init" and r.leaf.endswith("-init") for v in cells.values() for r in v)
    cfg["diagnostics"]["at_init"]["seeds"] = [0, 1]
    cfg["diagnostics"]["at_init"]["widths"] = {"convnet": [8, 16]}
    assert pcfg.networks_at_init(cfg) == {}
    cfg["diagnostics"]["checkpoint_epochs"] = [50, 100]  # no epoch 0 on D: the trained runs do not have it
    assert {k: [r.seed for r in v] for k, v in pcfg.networks_at_init(cfg).items()} == {("convnet", 8): [0, 1],
                                                                                      ("convnet", 16): [0, 1]}
    cfg["diagnostics"]["enabled"] = False
    cfg["diagnostics"]["at_init"] = {"seeds": [5], "widths": {"convnet": [64]}}
    assert pcfg.networks_at_init(cfg) == {}


def test_an_unknown_model_name_is_refused():
    raw = pcfg.load_yaml_strict(REPO / "config.yaml")
    raw = copy.deepcopy(raw)
    raw["diagnostics"]["at_init"] = {"seeds": [0], "widths": {"resnet": [8]}}
    with pytest.raises(pcfg.ConfigError, match=r"diagnostics.at_init.widths: 'resnet' is not a model's name"):
        pcfg.validate_config(raw, check_files=False)


def test_table_rows_at_init_are_learned_and_keep_their_kind(tmp_path):
    """A diagnose_at_init file beside a checkpoint's diagnostics.json: its rows need no train log, say
    trained_on "init", and count in the epoch-0 rows the width claims read."""
    stats = {"frobenius_distance": 0.5, "offdiag_ratio": 0.7}
    (tmp_path / "d.json").write_text(json.dumps({"meta": {**Run("digits", "convnet", 8, 0, "D").meta(), "epoch": 0},
                                                 "stats": stats}))
    nets = [{"meta": {**Run("digits", "convnet", 64, s, "init").meta(), "epoch": 0}, "stats": stats} for s in (0, 1)]
    (tmp_path / "a.json").write_text(json.dumps({"networks": nets}))
    verdicts = pd.DataFrame([{"dataset": "digits", "arch": "convnet", "width": 8, "seed": 0, "trained_on": "D",
                              "learned": False}])
    df = tables.diagnostics_table([tmp_path / "d.json", tmp_path / "a.json"], verdicts)
    init = df[df.trained_on == "init"]
    assert len(init) == 4 and init.learned.all() and set(init.epoch) == {0} and set(init.width) == {64}
    assert not df[df.trained_on == "D"].learned.any()  # the trained run keeps its own verdict


def test_networks_at_init_do_not_count_in_the_training_regime():
    """The claims about training ask whether the trained networks fit D; a network never trained has no
    train accuracy and must not turn them inconclusive (a bug the first default run with at_init showed)."""
    from pntk.report.claims_kernel import trained_regime

    def row(seed, on, epoch):
        return {"dataset": "digits", "arch": "convnet", "width": 8, "seed": seed, "trained_on": on, "epoch": epoch,
                "statistic": "frobenius_distance", "value": 0.5}

    diag = pd.DataFrame([row(0, "D", 0), row(0, "D", 100), row(1, "init", 0), row(2, "init", 0)])
    training = pd.DataFrame([{**row(0, "D", 100), "statistic": "train_acc", "value": 1.0}])
    assert trained_regime(training, diag) == ""
    training.loc[0, "value"] = 0.9
    assert trained_regime(training, diag).startswith("1 of 1 networks have not fit")


def test_readout_widths_cover_the_widths_at_init():
    """Every width the tables hold has its readout width, or the rate fit (which drops rows without one) and the
    claims (which fall back to the width parameter) would read different widths."""
    cfg = _default()
    cfg["diagnostics"]["at_init"] = {"seeds": [2], "widths": {"convnet": [8, 64]}}
    rw = pcfg.readout_widths(cfg)
    assert rw["convnet"] == {8: 8, 16: 16, 32: 32, 64: 64}
    assert set(rw["fcn"]) == {64, 128, 256, 512, 1024}
