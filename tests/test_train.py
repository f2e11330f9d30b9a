"""pntk.train: checkpoints at the configured epochs, exact resume after a kill, NaN fallback."""
from __future__ import annotations

import copy
import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pntk.train.loop as T
from pntk.models import ModelSpec, init_model
from pntk.train import DivergedError, TrainConfig, checkpoint_path, load_checkpoint, train_run

SPEC = ModelSpec(arch="fcn", width=16, in_shape=(1, 8, 8), num_classes=10, depth=3)
CFG = TrainConfig(epochs=5, checkpoint_epochs=(0, 2, 5), batch_size=16, lr=0.05, momentum=0.9,
                  weight_decay=1e-4, loss="cross_entropy", lr_fallback=0.01)
SEED = 3
META = {"data_fingerprint": "f" * 64, "dataset": "random"}


@pytest.fixture(scope="module")
def data():
    """48 train and 16 test random 8×8 images with labels that depend on the pixels (so SGD learns)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].sum(axis=(1, 2)) > 0).astype(np.int64) + 2 * (x[:, 0, 4:].sum(axis=(1, 2)) > 0)
    return x[:48], y[:48], x[48:], y[48:]


@pytest.fixture
def one_thread():
    """CPU GEMMs are bitwise reproducible for a fixed thread count; the subprocesses use one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _run(run_dir, data, cfg=CFG, spec=SPEC, seed=SEED, meta=META):
    return train_run(spec, seed, *data, cfg, run_dir, extra_meta=dict(meta))


def _states(paths):
    return [torch.load(p, weights_only=True)["model"] for p in paths]


def _assert_bitwise_equal(sd_a: dict, sd_b: dict) -> None:
    assert sd_a.keys() == sd_b.keys()
    for k in sd_a:
        assert torch.equal(sd_a[k], sd_b[k]), k


def _log(run_dir) -> list[dict]:
    with open(Path(run_dir) / "train_log.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """An uninterrupted run (one thread): its checkpoint state dicts and log."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_dir = tmp_path_factory.mktemp("ref") / "fcn-w16-s3"
        paths = _run(run_dir, data)
    finally:
        torch.set_num_threads(n)
    return {"run_dir": run_dir, "paths": paths, "states": _states(paths), "log": _log(run_dir)}


def test_checkpoints_at_configured_epochs(reference):
    run_dir, paths = reference["run_dir"], reference["paths"]
    assert paths == [checkpoint_path(run_dir, e) for e in (0, 2, 5)]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch000.pt", "epoch002.pt", "epoch005.pt"]
    for e, p in zip((0, 2, 5), paths):
        ck = torch.load(p, weights_only=True)  # safe loading must work: no pickled objects
        assert ck["epoch"] == e and ck["seed"] == SEED and ck["lr"] == CFG.lr
        assert ck["spec"]["arch"] == "fcn" and tuple(ck["spec"]["in_shape"]) == (1, 8, 8)
        assert ck["data_fingerprint"] == META["data_fingerprint"]
        assert {"git_describe", "torch_version", "pntk_version"} <= ck.keys()
    # epoch 0 is the initialisation of the seed; later checkpoints moved away from it
    init = init_model(SPEC, SEED).state_dict()
    _assert_bitwise_equal(reference["states"][0], init)
    assert not torch.equal(reference["states"][1]["readout.weight"], init["readout.weight"])
    assert not torch.equal(reference["states"][2]["readout.weight"], reference["states"][1]["readout.weight"])


def test_train_log_has_a_row_per_epoch(reference):
    rows = reference["log"]
    assert list(rows[0].keys()) == T.LOG_FIELDS
    assert [int(r["epoch"]) for r in rows] == list(range(CFG.epochs + 1))
    assert all(float(r["lr"]) == CFG.lr for r in rows)
    for r in rows:
        assert np.isfinite([float(r[k]) for k in ("train_loss", "train_acc", "test_loss", "test_acc")]).all()
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])  # it learns


def test_load_checkpoint_round_trip(reference, data):
    model, meta = load_checkpoint(reference["paths"][-1])
    assert not model.training
    assert "model" not in meta and meta["epoch"] == 5 and meta["seed"] == SEED
    _assert_bitwise_equal(model.state_dict(), reference["states"][-1])
    x = torch.as_tensor(data[2])
    ref = init_model(SPEC, 0)
    ref.load_state_dict(reference["states"][-1])
    ref.eval()
    assert torch.equal(model(x), ref(x))


def test_ntk_parameterization_checkpoint_round_trip(data, tmp_path):
    spec = replace(SPEC, parameterization="ntk")
    cfg = replace(CFG, epochs=1, checkpoint_epochs=(1,), lr=0.01)
    (path,) = _run(tmp_path / "fcn-w16-s3", data, cfg=cfg, spec=spec)
    model, meta = load_checkpoint(path)
    assert meta["spec"]["parameterization"] == "ntk"
    _assert_bitwise_equal(model.state_dict(), torch.load(path, weights_only=True)["model"])


def test_interrupted_run_resumes_bitwise(reference, data, tmp_path, monkeypatch, one_thread):
    """An exception after epoch 3's state was saved; the rerun resumes and matches the uninterrupted run."""
    run_dir = tmp_path / "fcn-w16-s3"
    real_save = T._save_state
    trained = []

    def save_then_die(resume, model, opt, epoch, *a, **k):
        real_save(resume, model, opt, epoch, *a, **k)
        if epoch == 3:
            raise KeyboardInterrupt("simulated kill after epoch 3")

    monkeypatch.setattr(T, "_save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _run(run_dir, data)
    assert not (run_dir / "checkpoints").exists() or not any((run_dir / "checkpoints").iterdir())
    assert not (run_dir / "train_log.csv").exists()
    assert torch.load(run_dir / ".resume" / "state.pt", weights_only=True)["epoch"] == 3

    def record(resume, model, opt, epoch, *a, **k):
        trained.append(epoch)
        real_save(resume, model, opt, epoch, *a, **k)

    monkeypatch.setattr(T, "_save_state", record)
    paths = _run(run_dir, data)
    assert trained == [4, 5]  # epochs 0..3 were not recomputed
    for a, b in zip(_states(paths), reference["states"]):
        _assert_bitwise_equal(a, b)
    cols = [k for k in T.LOG_FIELDS if k != "seconds"]
    assert [[r[k] for k in cols] for r in _log(run_dir)] == [[r[k] for k in cols] for r in reference["log"]]


CHILD = textwrap.dedent("""
    import json, logging, sys, time
    import numpy as np, torch
    torch.set_num_threads(1)
    import pntk.train.loop as T
    from pntk.models import ModelSpec
    run_dir, slow, npz, spec, cfg, seed, meta = sys.argv[1:]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    if slow == "slow":  # give the parent time to kill us between epochs
        real = T._save_state
        def save_slowly(*a, **k):
            real(*a, **k)
            time.sleep(0.4)
        T._save_state = save_slowly
    d = np.load(npz)
    spec, cfg = json.loads(spec), json.loads(cfg)
    spec["in_shape"] = tuple(spec["in_shape"])
    cfg["checkpoint_epochs"] = tuple(cfg["checkpoint_epochs"])
    T.train_run(ModelSpec(**spec), int(seed), d["xtr"], d["ytr"], d["xte"], d["yte"], T.TrainConfig(**cfg),
                run_dir, extra_meta=json.loads(meta))
""")


def _child(tmp_path, run_dir, npz, slow: bool = True) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    args = [sys.executable, str(script), str(run_dir), "slow" if slow else "fast", str(npz),
            json.dumps(asdict(SPEC)), json.dumps(asdict(CFG)), str(SEED), json.dumps(META)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkilled_run_resumes_bitwise(reference, data, tmp_path, caplog, one_thread):
    """SIGKILL a training process after some epoch's resume state appears; rerunning gives identical checkpoints."""
    npz = tmp_path / "data.npz"
    np.savez(npz, xtr=data[0], ytr=data[1], xte=data[2], yte=data[3])
    run_dir = tmp_path / "fcn-w16-s3"
    state = run_dir / ".resume" / "state.pt"
    proc = _child(tmp_path, run_dir, npz, slow=True)
    killed_after = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if state.exists():
                killed_after = torch.load(state, weights_only=True)["epoch"]
                if killed_after >= 2:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and killed_after is None:
            os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    assert killed_after is not None and 2 <= killed_after <= CFG.epochs  # killed before publishing
    # nothing that looks like finished output
    assert not (run_dir / "checkpoints").exists() or not any((run_dir / "checkpoints").iterdir())
    assert not (run_dir / "train_log.csv").exists()

    # rerun (in this process, one thread like the child): resumes after the last saved epoch
    with caplog.at_level("INFO", logger="pntk.train"):
        paths = _run(run_dir, data)
    assert f"resuming {run_dir} after epoch {killed_after}" in caplog.text
    for a, b in zip(_states(paths), reference["states"]):
        _assert_bitwise_equal(a, b)
    assert [int(r["epoch"]) for r in _log(run_dir)] == list(range(CFG.epochs + 1))


def _run_killed_after_epoch_2(run_dir, data, monkeypatch, cfg=CFG) -> None:
    """Run until epoch 2's resume state is saved, then die (KeyboardInterrupt), leaving .resume/ behind."""
    real_save = T._save_state

    def save_then_die(resume, model, opt, epoch, *a, **k):
        real_save(resume, model, opt, epoch, *a, **k)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(T, "_save_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _run(run_dir, data, cfg=cfg)
    monkeypatch.setattr(T, "_save_state", real_save)


def test_resume_state_of_another_config_is_ignored(reference, data, tmp_path, monkeypatch, one_thread):
    run_dir = tmp_path / "fcn-w16-s3"
    _run_killed_after_epoch_2(run_dir, data, monkeypatch, cfg=replace(CFG, lr=0.2))  # another lr: another run
    paths = _run(run_dir, data)
    for a, b in zip(_states(paths), reference["states"]):
        _assert_bitwise_equal(a, b)


def test_rerun_of_finished_run_changes_nothing(data, tmp_path):
    cfg = replace(CFG, epochs=2, checkpoint_epochs=(0, 2))
    run_dir = tmp_path / "fcn-w16-s3"
    first = _states(_run(run_dir, data, cfg=cfg))
    log_before = (run_dir / "train_log.csv").read_text()
    second = _states(_run(run_dir, data, cfg=cfg))
    for a, b in zip(first, second):
        _assert_bitwise_equal(a, b)
    assert (run_dir / "train_log.csv").read_text() == log_before


# ------------------------------------------------------------------------------------------------
# NaN fallback


DIVERGING = dict(lr=1e6, loss="mse", epochs=3, checkpoint_epochs=(0, 3))


def test_nan_loss_restarts_at_lr_fallback(data, tmp_path, caplog):
    run_dir = tmp_path / "fcn-w16-s3"
    cfg = replace(CFG, lr_fallback=0.01, **DIVERGING)
    with caplog.at_level("WARNING", logger="pntk.train"):
        paths = _run(run_dir, data, cfg=cfg)
    assert "lr_fallback" in caplog.text
    rows = _log(run_dir)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert all(float(r["lr"]) == 0.01 for r in rows)
    assert all(np.isfinite(float(r["train_loss"])) for r in rows)
    cks = [torch.load(p, weights_only=True) for p in paths]
    assert all(ck["lr"] == 0.01 for ck in cks)
    assert all(torch.isfinite(v).all() for ck in cks for v in ck["model"].values() if v.is_floating_point())
    # the restart is from scratch: identical to a run that used lr 0.01 from the start
    direct = _run(tmp_path / "direct" / "fcn-w16-s3", data, cfg=replace(cfg, lr=0.01, lr_fallback=None))
    for a, b in zip(_states(paths), _states(direct)):
        _assert_bitwise_equal(a, b)


@pytest.mark.parametrize("lr_fallback", [None, 1e5], ids=["no-fallback", "fallback-diverges-too"])
def test_divergence_without_usable_fallback_raises(data, tmp_path, lr_fallback):
    run_dir = tmp_path / "fcn-w16-s3"
    cfg = replace(CFG, lr_fallback=lr_fallback, **DIVERGING)
    with pytest.raises(DivergedError) as err:
        _run(run_dir, data, cfg=cfg)
    msg = str(err.value)
    assert "diverged" in msg and "1e+06" in msg.replace("1000000.0", "1e+06") and str(run_dir) in msg
    if lr_fallback:
        assert "100000.0" in msg
    assert not (run_dir / "checkpoints").exists() or not any((run_dir / "checkpoints").iterdir())
    assert not (run_dir / "train_log.csv").exists()


# ------------------------------------------------------------------------------------------------
# A run that did not learn is named; the default ConvNet-8 learns (issue 13)


@pytest.fixture(scope="module")
def digits_600(tmp_path_factory):
    """A real prepared digits subsample (600 train, 200 test) as (x_train, y_train, x_test, y_test)."""
    from pntk.data import open_prepared, prepare_dataset

    path = tmp_path_factory.mktemp("digits") / "digits.zarr"
    prepare_dataset("digits", None, path, train_size=600, test_size=200, seed=0)
    d = open_prepared(path)
    return d.x[d.train_indices], d.y[d.train_indices], d.x[d.test_indices], d.y[d.test_indices]


DIGITS_SPEC = ModelSpec(arch="convnet", width=32, in_shape=(1, 8, 8), num_classes=10, depth=8)
DIGITS_CFG = TrainConfig(epochs=5, checkpoint_epochs=(0, 5), batch_size=32, lr=0.005, momentum=0.9,
                         weight_decay=1e-4, loss="cross_entropy", lr_fallback=0.001)


@pytest.fixture(scope="module")
def convnet_run(digits_600, tmp_path_factory):
    """ConvNet-8 (width 32, the default's) trained 5 epochs on digits_600 with the default's SGD settings."""
    import logging

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("pntk.train")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        run_dir = tmp_path_factory.mktemp("convnet") / "convnet-w32-s0"
        paths = _run(run_dir, digits_600, cfg=DIGITS_CFG, spec=DIGITS_SPEC, seed=0)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        torch.set_num_threads(n)
    return {"run_dir": run_dir, "paths": paths, "log": _log(run_dir), "records": records}


def test_convnet8_learns_digits_well_above_chance(convnet_run):
    """Under PyTorch's default init this run stays at 0.10 every epoch (its features do not depend on the input)."""
    rows = convnet_run["log"]
    assert float(rows[0]["test_acc"]) < 0.2  # the initialisation
    assert float(rows[-1]["test_acc"]) > 0.4  # chance is 0.1; it reaches 0.6 here and > 0.95 in the default's 10 epochs
    assert rows[-1]["learned"] == "True" and rows[0]["learned"] == "False"


def test_learned_run_is_recorded_and_logged_without_warning(convnet_run):
    final = torch.load(convnet_run["paths"][-1], weights_only=True)
    init = torch.load(convnet_run["paths"][0], weights_only=True)
    assert final["learned"] is True and init["learned"] is False
    assert final["test_acc"] == pytest.approx(float(convnet_run["log"][-1]["test_acc"]))
    assert final["chance_acc"] == pytest.approx(0.1, abs=0.01) and final["n_test"] == 200
    assert final["learned_threshold"] == pytest.approx(0.1 + 3 * (0.09 / 200) ** 0.5, abs=0.01)
    messages = [r.getMessage() for r in convnet_run["records"]]
    assert not [r for r in convnet_run["records"] if r.levelname == "WARNING"]
    assert any(f"run {convnet_run['run_dir']} learned" in m for m in messages)


def test_every_epoch_logs_progress_with_an_eta(convnet_run):
    lines = [r.getMessage() for r in convnet_run["records"] if "ETA" in r.getMessage()]
    assert [line.split()[1] for line in lines] == [f"{e}/5" for e in range(6)]
    assert "elapsed" in lines[-1] and lines[-1].endswith("ETA 0.0s")
    assert "ETA unknown" in lines[0]  # nothing trained yet at the initialisation


def test_run_that_did_not_learn_gets_a_warning_and_is_recorded(digits_600, tmp_path, caplog, one_thread):
    """Labels shuffled independently of the images: nothing to learn, test accuracy stays at chance."""
    x_tr, y_tr, x_te, y_te = digits_600
    rng = np.random.default_rng(0)
    shuffled = (x_tr, rng.permutation(y_tr), x_te, rng.permutation(y_te))
    spec = ModelSpec(arch="fcn", width=16, in_shape=(1, 8, 8), num_classes=10, depth=3)
    cfg = replace(DIGITS_CFG, epochs=2, checkpoint_epochs=(2,))
    run_dir = tmp_path / "fcn-w16-s0"
    with caplog.at_level("INFO", logger="pntk.train"):
        (path,) = _run(run_dir, shuffled, cfg=cfg, spec=spec, seed=0)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "did NOT learn" in warnings[0].getMessage()
    assert str(run_dir) in warnings[0].getMessage()
    assert _log(run_dir)[-1]["learned"] == "False"
    ck = torch.load(path, weights_only=True)
    assert ck["learned"] is False and ck["test_acc"] < ck["learned_threshold"]


def test_resume_state_of_another_init_is_ignored(data, tmp_path, monkeypatch, caplog, one_thread):
    """A changed init (e.g. models.py edited between a kill and the rerun) must not resume old weights."""
    run_dir = tmp_path / "fcn-w16-s3"
    _run_killed_after_epoch_2(run_dir, data, monkeypatch)

    def halved_init(spec, seed):
        model = init_model(spec, seed)
        with torch.no_grad():
            model.readout.weight.mul_(0.5)
        return model

    monkeypatch.setattr(T, "init_model", halved_init)
    with caplog.at_level("INFO", logger="pntk.train"):
        paths = _run(run_dir, data)
    assert "ignoring resume state" in caplog.text and "resuming" not in caplog.text
    assert torch.equal(torch.load(paths[0], weights_only=True)["model"]["readout.weight"],
                       halved_init(SPEC, SEED).state_dict()["readout.weight"])


def test_lr_fallback_not_below_lr_is_not_tried(data, tmp_path):
    cfg = replace(CFG, lr_fallback=1e7, **DIVERGING)
    with pytest.raises(DivergedError, match=r"tried \[1000000\.0\]"):
        _run(tmp_path / "fcn-w16-s3", data, cfg=cfg)


def test_progress_bar_only_on_a_terminal(monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(T._batch_starts(10, 4, "epoch 1/2"), range)  # pytest's captured stderr is no terminal
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    bar = T._batch_starts(10, 4, "epoch 1/2")
    assert list(bar) == [0, 4, 8]
    assert "epoch 1/2" in term.getvalue()


@pytest.mark.parametrize("momentum, weight_decay", [(0.9, 1e-4), (0.0, 0.0), (0.5, 0.01)])
def test_sgd_follows_torch_sgd_bitwise(momentum, weight_decay):
    """pntk.train.sgd.SGD (no torch._dynamo import) takes torch.optim.SGD's steps exactly, a parameter without
    a gradient included; its state dict (and torch's) resumes the same trajectory."""
    from pntk.train.sgd import SGD

    def model():
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3), nn.Linear(3, 2))
        m[3].weight.requires_grad_(True)
        return m

    def steps(m, opt, n, start=0):
        for k in range(start, start + n):
            g = torch.Generator().manual_seed(k)
            x, y = torch.randn(8, 6, generator=g), torch.randint(0, 2, (8,), generator=g)
            loss = F.cross_entropy(m(x), y) if k % 3 else F.cross_entropy(m[:3](x)[:, :2], y)  # m[3]: no grad
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    ours, theirs = model(), model()
    kw = dict(lr=0.05, momentum=momentum, weight_decay=weight_decay)
    o_ours, o_theirs = SGD(ours.parameters(), **kw), torch.optim.SGD(theirs.parameters(), **kw)
    steps(ours, o_ours, 7)
    steps(theirs, o_theirs, 7)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    o_theirs_at_7 = copy.deepcopy(o_theirs.state_dict())
    steps(theirs, o_theirs, 5, start=7)  # the reference continues without interruption
    for state in (o_ours.state_dict(), o_theirs_at_7):  # resume from ours, or from torch's format
        resumed = model()
        resumed.load_state_dict(ours.state_dict())
        o_res = SGD(resumed.parameters(), **kw)
        o_res.load_state_dict(state)
        steps(resumed, o_res, 5, start=7)
        for a, b in zip(resumed.parameters(), theirs.parameters(), strict=True):
            assert torch.equal(a, b)
    with pytest.raises(ValueError, match="momentum buffers"):
        SGD(ours.parameters(), **kw).load_state_dict({"momentum_buffers": [None]})
