"""`pntk info` and `pntk verify` on small synthetic kernel stores built with the tile protocol."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from pntk.store.paths import StorePaths
from pntk.store import tiles
from pntk.cli import main, store_summary
from pntk.store.zarr_store import tile_range

N, TILE = 25, 10  # ragged last tile: 3 × 3 tiles
STEM = "runs/digits/fcn-w16-s0/epoch001/kernels/pntk-sub-train-sub-train"
ATTRS = {"rows": "sub-train", "cols": "sub-train", "method": "reference", "checkpoint": "epoch001.pt",
         "checkpoint_sha256": "ab" * 32, "data_fingerprint": "cd" * 32, "dataset": "digits",
         "arch": "fcn", "width": 16, "seed": 0, "epoch": 1}


@pytest.fixture(scope="module")
def good_root(tmp_path_factory) -> Path:
    """A finalized symmetric pNTK store (25 × 25, tile 10) under root/STEM."""
    root = tmp_path_factory.mktemp("stores")
    stem = root / STEM
    ids = np.arange(100, 100 + N)
    tiles.init_store(StorePaths(stem).sentinel, kind="pntk", row_ids=ids, col_ids=ids,
                     row_labels=ids % 10, col_labels=ids % 10, tile=TILE, dtype="float64", out_dim=None,
                     attrs=ATTRS)
    a = np.random.default_rng(0).normal(size=(N, 4))
    k = a @ a.T  # (N, N) symmetric
    flags = []
    n_t = -(-N // TILE)
    for i in range(n_t):
        for j in range(i, n_t):
            rs, cs = tile_range(N, TILE, i), tile_range(N, TILE, j)
            flags.append(StorePaths(stem).flag(i, j))
            tiles.write_tile_and_flag(flags[-1], k[rs, cs], i, j, 0.01)
    tiles.finalize(StorePaths(stem).manifest, flags)
    return root


def copy_store(src_root: Path, dst_root: Path) -> Path:
    shutil.copytree(src_root, dst_root)
    return dst_root / STEM


def zarr_path(stem: Path) -> Path:
    return stem.with_name(stem.name + ".zarr")


def test_info_text_names_shape_kind_completeness(good_root, capsys):
    assert main(["info", str(zarr_path(good_root / STEM))]) == 0
    out = capsys.readouterr().out

    def field(name: str) -> str:
        m = re.search(rf"^{name}\s+(.*)$", out, re.M)
        assert m, f"no {name!r} line in:\n{out}"
        return m[1]

    assert field("shape") == "25 × 25"
    assert field("kind") == "pntk (symmetric)"
    assert field("completeness") == "9/9 tiles written (complete)"
    assert field("finalized").startswith("yes")
    assert field("tile size") == "10 (3 × 3 tiles)"
    assert (field("width"), field("epoch"), field("pntk version")) == ("16", "1", "0.1.0")
    assert field("checkpoint sha256") == "ab" * 32


def test_info_json_of_unfinished_store(good_root, tmp_path, capsys):
    stem = copy_store(good_root, tmp_path / "c")
    StorePaths(stem).flag(0, 1).unlink()  # flag of tile (0,1) also covered its transpose (1,0)
    StorePaths(stem).manifest.unlink()
    assert main(["info", "--json", str(StorePaths(stem).sentinel)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["tiles_written"], s["tiles_total"], s["finalized"]) == (7, 9, False)
    assert s["shape"] == [25, 25] and s["kind"] == "pntk" and s["tile_size"] == TILE
    assert s["provenance"]["checkpoint_sha256"] == "ab" * 32 and s["build"]["pntk_version"]
    assert store_summary(stem)["tiles_written"] == 7  # the bare stem works too


def test_info_missing_store_fails(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.zarr")]) == 2
    assert "no kernel store there" in capsys.readouterr().err


def test_verify_good_store_exits_zero(good_root, capsys):
    assert main(["verify", str(good_root / (STEM + ".manifest.json"))]) == 0
    assert capsys.readouterr().out.startswith("OK")


def test_verify_names_corrupted_chunk_and_flag(good_root, tmp_path, capsys):
    stem = copy_store(good_root, tmp_path / "bad")
    arr = zarr.open_group(str(zarr_path(stem)), mode="r+")["kernel"]
    arr[0:10, 0:10] = arr[0:10, 0:10] + 1.0  # chunk (0,0) now differs from manifest and flag
    flag = StorePaths(stem).flag(1, 2)
    rec = json.loads(flag.read_text())
    rec["chunks"]["1_2"] = "0" * 64
    flag.write_text(json.dumps(rec))
    rc = main(["verify", str(zarr_path(good_root / STEM)), str(zarr_path(stem))])
    out = capsys.readouterr().out
    assert rc == 1
    assert f"OK      {zarr_path(good_root / STEM)}" in out
    bad = out[out.index("FAILED"):]
    assert str(zarr_path(stem)) in bad
    assert "tiles whose chunk differs from the manifest: 0_0" in bad
    assert "bad flags: 1_2.json" in bad
    assert main(["verify", "--json", str(zarr_path(stem))]) == 1
    rec = json.loads(capsys.readouterr().out)[0]
    assert (rec["mismatch"], rec["bad_flags"], rec["ok"]) == (["0_0"], ["1_2.json"], False)


def test_verify_unfinalized_store_fails(good_root, tmp_path, capsys):
    stem = copy_store(good_root, tmp_path / "u")
    StorePaths(stem).manifest.unlink()
    assert main(["verify", str(stem)]) == 1
    assert "not finalized" in capsys.readouterr().out


def test_console_script(good_root):
    exe = Path(sys.executable).with_name("pntk")
    if not exe.exists():
        pytest.skip("console script `pntk` not installed in this environment")
    res = subprocess.run([str(exe), "verify", str(zarr_path(good_root / STEM))], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and res.stdout.startswith("OK"), res.stdout + res.stderr
