"""`pntk synth cifar10`: synthetic CIFAR-10 in the official file format — read by torchvision itself and by
this repo's loader, deterministic for a seed, labelled synthetic everywhere, and learnable."""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest

from pntk import cli
from pntk import data as D
from pntk.data import synthetic as S

N_TRAIN, N_TEST = 103, 20  # 103: the five train batches get 21, 21, 21, 20, 20 images


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    S.write_synthetic_cifar10(root, seed=0, n_train=N_TRAIN, n_test=N_TEST)
    return root


def _digests(base: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(base.iterdir())}


def test_torchvision_cifar10_reads_the_files(synth_root, monkeypatch):
    """The stock torchvision class, only its md5 check relaxed to an existence check."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: Path(fpath).is_file())
    train = tv_cifar.CIFAR10(str(synth_root), train=True)
    test = tv_cifar.CIFAR10(str(synth_root), train=False)
    assert train.data.shape == (N_TRAIN, 32, 32, 3) and train.data.dtype == np.uint8
    assert test.data.shape == (N_TEST, 32, 32, 3) and len(test.targets) == N_TEST
    assert train.classes == S.LABEL_NAMES and all(isinstance(t, int) for t in train.targets)
    assert sorted(set(train.targets)) == list(range(10))
    assert np.bincount(test.targets).tolist() == [2] * 10  # balanced like CIFAR-10
    x_tr, y_tr, x_te, y_te = S.synthetic_cifar10(N_TRAIN, N_TEST, seed=0)
    np.testing.assert_array_equal(train.data, x_tr.transpose(0, 2, 3, 1))  # CHW rows → HWC as torchvision does
    np.testing.assert_array_equal(train.targets, y_tr)
    np.testing.assert_array_equal(test.data, x_te.transpose(0, 2, 3, 1))


def test_official_pickle_layout(synth_root):
    """As the CIFAR page reads them (encoding='bytes'): bytes keys, uint8 (N, 3072), Python-2 strings."""
    base = synth_root / S.FOLDER
    sizes = []
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        with open(base / name, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
        assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (len(batch[b"labels"]), 3072)
        assert b"SYNTHETIC" in batch[b"batch_label"] and all(isinstance(f, bytes) for f in batch[b"filenames"])
        sizes.append(len(batch[b"labels"]))
    assert sizes == [21, 21, 21, 20, 20, N_TEST]
    with open(base / "batches.meta", "rb") as fh:
        meta = pickle.load(fh, encoding="bytes")
    assert meta[b"label_names"] == [n.encode() for n in S.LABEL_NAMES] and meta[b"num_vis"] == 3072
    assert b"SYNTHETIC" in meta[b"synthetic"]
    readme = (base / "README.txt").read_text()
    assert readme.startswith("SYNTHETIC DATA - NOT CIFAR-10") and "verify_md5: false" in readme


def test_repo_loader_records_synthetic_source(synth_root, tmp_path, caplog):
    attrs = D.prepare_dataset("cifar10", synth_root, tmp_path / "c.zarr", verify_md5=False)
    assert "SYNTHETIC" in caplog.text and "say nothing about cifar10" in caplog.text  # in the job's log
    d = D.open_prepared(tmp_path / "c.zarr", verify=True)
    assert d.x.shape == (N_TRAIN + N_TEST, 3, 32, 32) and d.num_classes == 10
    assert attrs["source"].startswith("SYNTHETIC") and attrs["classes"] == S.LABEL_NAMES
    with pytest.raises(ValueError, match="md5") as err:  # the default md5 check says what the files are
        D.prepare_dataset("cifar10", synth_root, tmp_path / "m.zarr")
    assert "synthetic files" in str(err.value) and "verify_md5" in str(err.value)
    assert S.synthetic_marker(synth_root / S.FOLDER).startswith("SYNTHETIC")


def test_deterministic_for_a_seed(synth_root, tmp_path):
    S.write_synthetic_cifar10(tmp_path / "again", seed=0, n_train=N_TRAIN, n_test=N_TEST)
    assert _digests(tmp_path / "again" / S.FOLDER) == _digests(synth_root / S.FOLDER)  # byte for byte
    other = S.synthetic_cifar10(N_TRAIN, N_TEST, seed=1)
    same = S.synthetic_cifar10(N_TRAIN, N_TEST, seed=0)
    assert not np.array_equal(other[0], same[0])
    more = S.synthetic_cifar10(2 * N_TRAIN, N_TEST, seed=0)  # the test images do not depend on --train
    np.testing.assert_array_equal(more[2], same[2])
    np.testing.assert_array_equal(more[3], same[3])


def test_learnable_but_not_trivial():
    """A linear classifier on raw pixels beats chance (0.1) by far, yet stays far from perfect."""
    from sklearn.linear_model import RidgeClassifier

    x_tr, y_tr, x_te, y_te = S.synthetic_cifar10(2000, 500, seed=3)
    flat_tr = x_tr.reshape(len(x_tr), -1) / 255.0  # (N, 3072)
    flat_te = x_te.reshape(len(x_te), -1) / 255.0
    mean, std = flat_tr.mean(0), flat_tr.std(0) + 1e-6
    clf = RidgeClassifier(alpha=1000.0).fit((flat_tr - mean) / std, y_tr)
    acc = clf.score((flat_te - mean) / std, y_te)
    assert 0.2 < acc < 0.9, acc  # 0.2 is > 7 binomial standard deviations above chance at 500 samples
    assert x_tr.std() > 30  # not a blank canvas: colours, gradient and noise vary


def test_cli_writes_and_refuses_to_clobber(tmp_path, capsys):
    out = tmp_path / "root"
    assert cli.main(["synth", "cifar10", "--out", str(out), "--train", "10", "--test", "5", "--seed", "2"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    assert cli.main(["synth", "cifar10", "--out", str(out), "--train", "10", "--test", "5"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["synth", "cifar10", "--out", str(out), "--train", "10", "--test", "5", "--overwrite"]) == 0
    real = tmp_path / "real" / S.FOLDER  # a folder without the synthetic mark is never replaced
    real.mkdir(parents=True)
    (real / "data_batch_1").write_bytes(b"precious")
    assert cli.main(["synth", "cifar10", "--out", str(real.parent), "--overwrite"]) == 2
    assert "not synthetic" in capsys.readouterr().err and (real / "data_batch_1").read_bytes() == b"precious"
    with pytest.raises(SystemExit):
        cli.main(["synth", "cifar10", "--out", str(out), "--train", "0"])
    assert sorted(p.name for p in out.iterdir()) == [S.FOLDER]  # no temporary folder left behind
