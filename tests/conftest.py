"""Shared fixtures. Keep this file small: fixtures used by a single test module belong in that module."""
from __future__ import annotations

from pathlib import Path

import pytest
from servers import nginx, s3, s3_server  # noqa: F401 (fixtures: moto S3 and nginx, for remote stores and archives)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def small_digits_store(tmp_path_factory) -> Path:
    """A real prepared data store (`prepare_dataset`) of a small stratified digits subsample: 80 train, 40 test."""
    from pntk.data import prepare_dataset

    path = tmp_path_factory.mktemp("data") / "digits.zarr"
    prepare_dataset("digits", None, path, train_size=80, test_size=40, seed=0)
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is as fast and does not stall on a shared machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def fcn_checkpoint(small_digits_store, tmp_path):
    """A real epoch-1 checkpoint of a small FCN trained on small_digits_store."""
    from pntk.data import open_prepared
    from pntk.models import ModelSpec
    from pntk.train import TrainConfig, train_run

    d = open_prepared(small_digits_store)
    spec = ModelSpec(arch="fcn", width=8, in_shape=d.in_shape, num_classes=d.num_classes, depth=2)
    tr, te = d.train_indices, d.test_indices
    (path,) = train_run(spec, 0, d.x[tr], d.y[tr], d.x[te], d.y[te],
                        TrainConfig(epochs=1, checkpoint_epochs=(1,), batch_size=32), tmp_path / "runs" / "fcn-w8-s0",
                        extra_meta={"data_fingerprint": d.fingerprint})
    return path
