"""SGD training with checkpoints at chosen epochs, exact resume, and the paper's NaN fallback.

Resume protocol: after every epoch the full state (model, optimizer, epoch, lr) is written atomically to
`{run_dir}/.resume/state.pt`, and each checkpoint epoch to `{run_dir}/.resume/epoch{E:03d}.pt`. Only when
the run finishes are the checkpoints linked into `{run_dir}/checkpoints/` (the declared outputs), so a
killed job never leaves a checkpoint set that looks final, and Snakemake deleting incomplete outputs on
rerun loses no work. Batch order depends only on (seed, epoch), so a resumed run is bitwise equal to an
uninterrupted one on CPU. The resume state is keyed on the run's config and on its initial weights, so
a state left by another config or by an older init (a changed model zoo, pntk.models) is discarded, not resumed.

Trust: every epoch's row of `train_log.csv` and every checkpoint record whether the network has learned
(`pntk.train.learned.did_learn` on its test accuracy), and a run whose final network did not learn gets a
WARNING in the job log.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models import ModelSpec, init_model
from ..provenance import atomic_torch_save, provenance
from ..runs import CHECKPOINTS, TRAIN_LOG, checkpoint_name
from .learned import learning_verdict
from .sgd import SGD

log = logging.getLogger(__name__)

# learned: did_learn(test_acc) of that epoch's network (epoch 0, the initialisation, is never learned)
LOG_FIELDS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "learned", "seconds"]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    checkpoint_epochs: tuple[int, ...]
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    loss: str = "cross_entropy"
    lr_fallback: float | None = 0.01
    device: str = "cpu"


    def __post_init__(self):
        late = [e for e in self.checkpoint_epochs if e > self.epochs]
        if late:
            raise ValueError(f"train.checkpoint_epochs: {late} after the last epoch (train.epochs = {self.epochs})")


class DivergedError(RuntimeError):
    pass


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / checkpoint_name(epoch)


def loss_fn(kind: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean loss over the batch. out (B, O) logits, y (B,) labels."""
    if kind == "cross_entropy":
        return F.cross_entropy(out, y)
    target = F.one_hot(y, out.shape[1]).to(out.dtype)  # (B, O)
    return 0.5 * ((out - target) ** 2).sum(dim=1).mean()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str, batch: int = 1024) -> tuple[float, float]:
    """(mean loss, accuracy) in eval mode; restores the training flag."""
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    for s in range(0, len(x), batch):
        out = model(x[s:s + batch])
        total += loss_fn(loss, out, y[s:s + batch]).item() * len(out)
        correct += (out.argmax(1) == y[s:s + batch]).sum().item()
    model.train(was_training)
    return total / max(len(x), 1), correct / max(len(x), 1)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g)


def init_digest(spec: ModelSpec, seed: int) -> str:
    """sha256 of the initial parameters and buffers of (spec, seed): changes whenever the init does."""
    h = hashlib.sha256()
    for name, value in init_model(spec, seed).state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _run_key(spec: ModelSpec, seed: int, cfg: TrainConfig, extra_meta: dict) -> str:
    """Identity of a run: a resume state written under another config, data set or init is ignored."""
    return json.dumps([asdict(spec), seed, asdict(cfg), extra_meta.get("data_fingerprint"),
                       init_digest(spec, seed)], sort_keys=True, default=str)


def _save_state(resume: Path, model, opt, epoch: int, lr: float, rows: list[dict], key: str) -> None:
    atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                       "lr": lr, "log_rows": rows, "key": key}, resume / "state.pt")


def train_run(spec: ModelSpec, seed: int, x_train: np.ndarray, y_train: np.ndarray,
              x_test: np.ndarray, y_test: np.ndarray, cfg: TrainConfig, run_dir: str | Path,
              extra_meta: dict | None = None) -> list[Path]:
    """Train one run; returns the checkpoint paths. Resumes from `{run_dir}/.resume` if present."""
    run_dir = Path(run_dir)
    # Outputs of an earlier run must not outlive a failure of this one; they are re-linked at the end.
    shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)
    (run_dir / TRAIN_LOG).unlink(missing_ok=True)
    resume = run_dir / ".resume"
    resume.mkdir(parents=True, exist_ok=True)
    # A restart after divergence only makes sense at a smaller step.
    lrs = [cfg.lr] + ([cfg.lr_fallback] if cfg.lr_fallback and cfg.lr_fallback < cfg.lr else [])
    state_file = resume / "state.pt"
    key = _run_key(spec, seed, cfg, extra_meta or {})
    if state_file.exists():
        st = torch.load(state_file, weights_only=True)
        if st.get("key") != key:
            log.info("ignoring resume state of another configuration in %s", resume)
            shutil.rmtree(resume)
            resume.mkdir(parents=True)
        else:
            lrs = [lr for lr in lrs if lr <= st["lr"]] or [st["lr"]]
    for attempt, lr in enumerate(lrs):
        try:
            rows = _train_with_lr(spec, seed, x_train, y_train, x_test, y_test, cfg, lr, run_dir,
                                  extra_meta or {}, key)
            break
        except DivergedError as err:
            log.warning("run %s: %s", run_dir, err)
            shutil.rmtree(resume, ignore_errors=True)
            resume.mkdir(parents=True)
            if attempt == len(lrs) - 1:
                raise DivergedError(f"{run_dir}: loss diverged (NaN/inf) at every learning rate tried "
                                    f"{lrs}; no checkpoint was written") from err
            log.warning("restarting %s from scratch at lr %g (train.lr_fallback)", run_dir, lrs[attempt + 1])
    if cfg.epochs > 0:
        _report_learning(run_dir, learning_verdict(rows[-1]["test_acc"], spec.num_classes, y_test))
    return _publish(run_dir, cfg)


def _report_learning(run_dir: Path, v: dict) -> None:
    """Say out loud whether the final network learned: a WARNING in the job log when it did not."""
    if v["learned"]:
        log.info("run %s learned: final test accuracy %.4f (chance %.4f)", run_dir, v["test_acc"], v["chance_acc"])
    else:
        log.warning("run %s did NOT learn: final test accuracy %.4f is within chance (chance %.4f; learned needs "
                    ">= %.4f on %d test examples, pntk.train.learned.did_learn). Its checkpoints, kernels and "
                    "regressions describe a network that did not learn.", run_dir, v["test_acc"], v["chance_acc"],
                    v["learned_threshold"], v["n_test"])


def _train_with_lr(spec, seed, x_train, y_train, x_test, y_test, cfg: TrainConfig, lr: float,
                   run_dir: Path, extra_meta: dict, key: str) -> list[dict]:
    """Train at one learning rate from the resume state (if any); returns the log rows of every epoch."""
    dev = torch.device(cfg.device)
    resume = run_dir / ".resume"
    xtr = torch.as_tensor(x_train, device=dev)  # (N, C, H, W)
    ytr = torch.as_tensor(y_train, device=dev, dtype=torch.long)
    xte = torch.as_tensor(x_test, device=dev)
    yte = torch.as_tensor(y_test, device=dev, dtype=torch.long)
    model = init_model(spec, seed).to(dev)
    opt = SGD(model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    rows: list[dict] = []
    start = 0
    state_file = resume / "state.pt"
    if state_file.exists():
        st = torch.load(state_file, weights_only=True, map_location=dev)
        if st["lr"] == lr:
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            start, rows = st["epoch"] + 1, list(st["log_rows"])
            log.info("resuming %s after epoch %d", run_dir, st["epoch"])
    meta = {"spec": spec.to_dict(), "seed": seed, "lr": lr, **extra_meta, **provenance()}
    trained_seconds: list[float] = []  # of the epochs trained by this process, for the ETA
    for epoch in range(start, cfg.epochs + 1):
        t0 = time.perf_counter()
        train_loss = train_acc = float("nan")
        if epoch > 0:  # epoch 0 is the initialisation, evaluated but not trained
            model.train()
            order = epoch_order(len(xtr), seed, epoch).to(dev)
            total, correct = 0.0, 0
            for s in _batch_starts(len(order), cfg.batch_size, f"epoch {epoch}/{cfg.epochs}"):
                idx = order[s:s + cfg.batch_size]
                out = model(xtr[idx])
                loss = loss_fn(cfg.loss, out, ytr[idx])
                if not torch.isfinite(loss):
                    raise DivergedError(f"non-finite loss at epoch {epoch} with lr {lr}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                correct += (out.argmax(1) == ytr[idx]).sum().item()
            train_loss, train_acc = total / len(xtr), correct / len(xtr)
        ev_train = evaluate(model, xtr, ytr, cfg.loss)
        if epoch == 0:
            train_loss, train_acc = ev_train
        test_loss, test_acc = evaluate(model, xte, yte, cfg.loss)
        if not math.isfinite(ev_train[0]):
            raise DivergedError(f"non-finite evaluation loss at epoch {epoch} with lr {lr}")
        verdict = learning_verdict(test_acc, spec.num_classes, y_test)
        learned = epoch > 0 and verdict["learned"]  # the initialisation has learned nothing
        seconds = time.perf_counter() - t0
        rows.append({"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_acc": train_acc,
                     "test_loss": test_loss, "test_acc": test_acc, "learned": learned, "seconds": seconds})
        if epoch > 0:
            trained_seconds.append(seconds)
        log.info("epoch %d/%d lr %g train loss %.4f acc %.3f test loss %.4f acc %.3f | %s", epoch, cfg.epochs,
                 lr, train_loss, train_acc, test_loss, test_acc, progress_line(trained_seconds, cfg.epochs - epoch))
        if epoch in cfg.checkpoint_epochs:
            atomic_torch_save({"model": model.state_dict(), "epoch": epoch, **meta, **verdict, "learned": learned},
                              resume / checkpoint_name(epoch))
        _save_state(resume, model, opt, epoch, lr, rows, key)
    _write_log(resume / TRAIN_LOG, rows)
    return rows


def _batch_starts(n: int, batch_size: int, desc: str):
    """Start index of each batch; a tqdm bar when stderr is a terminal (job logs get the epoch lines)."""
    starts = range(0, n, batch_size)
    if not sys.stderr.isatty():
        return starts
    from tqdm import tqdm

    return tqdm(starts, desc=desc, leave=False, unit="batch")


def progress_line(step_seconds: list[float], remaining: int) -> str:
    """'elapsed 12.3s, ETA 45.6s' from the steps (epochs, cycles) done so far: mean seconds per step × remaining."""
    elapsed = sum(step_seconds)
    if not step_seconds:
        return f"elapsed {elapsed:.1f}s, ETA unknown"
    return f"elapsed {elapsed:.1f}s, ETA {elapsed / len(step_seconds) * remaining:.1f}s"


def _write_log(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def _publish(run_dir: Path, cfg: TrainConfig) -> list[Path]:
    """Link finished checkpoints and the log from .resume/ into the declared outputs."""
    resume = run_dir / ".resume"
    paths = []
    for epoch in sorted(cfg.checkpoint_epochs):
        dst = checkpoint_path(run_dir, epoch)
        dst.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(resume / checkpoint_name(epoch), dst)
        paths.append(dst)
    _link_or_copy(resume / TRAIN_LOG, run_dir / TRAIN_LOG)
    return paths


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint (weights_only: safe for checkpoints from other people)."""
    ck = torch.load(path, weights_only=True, map_location=device)
    spec = ModelSpec.from_dict(ck["spec"])  # an import-path model is rebuilt from its recorded path/kwargs
    model = init_model(spec, ck["seed"]).to(device)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, {k: v for k, v in ck.items() if k != "model"}
