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

from pntk.cli import main, store_summary
from pntk.store import tiles
from pntk.store.paths import StorePaths
from pntk.tiling import TileGrid

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
            rs, cs = TileGrid(N, N, TILE).slices(i, j)
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


def test_verify_a_folder_checks_every_store_under_it(good_root, tmp_path, capsys):
    folder = tmp_path / "results"
    copy_store(good_root, folder / "a" / "kernels" / "one")
    copy_store(good_root, folder / "b" / "kernels" / "two")
    assert main(["verify", str(folder)]) == 0
    assert capsys.readouterr().out.count("OK      ") == 2
    (tmp_path / "empty").mkdir()
    assert main(["verify", str(tmp_path / "empty")]) == 1
    assert "no kernel store there" in capsys.readouterr().out


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


# ------------------------------------------------------------------------------------------------
# verify names every bad tile; info on several stores and on a folder; ls


def test_verify_names_tiles_without_a_flag(good_root, tmp_path, capsys):
    stem = copy_store(good_root, tmp_path / "noflag")
    StorePaths(stem).flag(0, 1).unlink()  # manifest intact, flag of (0,1) and its mirror (1,0) gone
    assert main(["verify", str(stem)]) == 1
    out = capsys.readouterr().out
    assert "tiles without a flag file: 0_1, 1_0" in out, out
    assert out.rstrip().splitlines()[-1].strip() != "", out


def test_info_on_several_stores_and_on_a_results_folder(good_root, tmp_path, capsys):
    other = copy_store(good_root, tmp_path / "o")
    assert main(["info", str(zarr_path(good_root / STEM)), str(StorePaths(other).manifest)]) == 0
    out = capsys.readouterr().out
    assert out.count("completeness") == 2 and str(zarr_path(other)) in out
    assert main(["info", "--json", str(good_root / STEM), str(other)]) == 0
    assert [s["tiles_written"] for s in json.loads(capsys.readouterr().out)] == [9, 9]
    assert main(["info", str(good_root)]) == 0
    out = capsys.readouterr().out
    assert "a folder, not a kernel store; it holds 1 kernel stores" in out and "pntk ls" in out
    assert f"{STEM}.zarr" in out and "no kernel store there" not in out
    (tmp_path / "empty").mkdir()
    assert main(["info", str(tmp_path / "empty")]) == 2


def ls_rows(capsys, *args) -> tuple[int, list[dict]]:
    rc = main(["ls", "--json", *args])
    return rc, json.loads(capsys.readouterr().out)


def test_ls_lists_runs_checkpoints_and_stores_with_status(good_root, tmp_path, capsys):
    res = tmp_path / "results"
    shutil.copytree(good_root, res)
    run = res / "runs" / "digits" / "fcn-w16-s0"
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "epoch001.pt").write_bytes(b"x" * 100)
    (run / "train_log.csv").write_text("epoch,test_acc,learned\n0,0.1,False\n1,0.9,True\n")
    rect = run / "epoch001" / "kernels" / "pntk-sub-test-sub-train"
    ids = np.arange(7)
    tiles.init_store(StorePaths(rect).sentinel, kind="pntk", row_ids=ids, col_ids=np.arange(25), row_labels=ids,
                     col_labels=np.arange(25), tile=TILE, dtype="float64", out_dim=None, attrs=ATTRS)
    tiles.write_tile_and_flag(StorePaths(rect).flag(0, 0), np.ones((7, 10)), 0, 0, 0.01)  # 1 of 3 tiles
    unflagged = copy_store(good_root, tmp_path / "u")
    target = run / "epoch001" / "kernels" / "entk-sub-train-sub-train"  # a finalized store that lost a flag
    for f in StorePaths(unflagged).files():
        dst = target.parent / f.relative_to(unflagged.parent).as_posix().replace(unflagged.name, target.name, 1)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst)
    StorePaths(target).flag(1, 2).unlink()

    rc, rows = ls_rows(capsys, str(res))
    assert rc == 0
    by_item = {r["item"]: r for r in rows}
    assert by_item["train_log.csv"]["status"] == "learned (epoch 1, test acc 0.900)"
    assert by_item["checkpoint"]["size"] == 100 and by_item["checkpoint"]["epoch"] == "001"
    good = by_item["pntk-sub-train-sub-train"]
    assert (good["tiles"], good["status"], good["shape"], good["rows × cols"]) == \
        ("9/9", "verified", "25 × 25", "sub-train × sub-train")
    assert good["size"] > 0
    assert by_item["pntk-sub-test-sub-train"]["status"] == "unfinished (1/3 tiles, no manifest)"
    assert by_item["pntk-sub-test-sub-train"]["tiles"] == "1/3"
    lost = by_item["entk-sub-train-sub-train"]
    assert not lost["ok"] and "tiles without a flag file: 1_2, 2_1" in lost["status"], lost

    assert main(["ls", str(res)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:3] == ["run", "epoch", "item"]
    assert "1 runs, 1 checkpoints, 3 kernel stores (1 verified, 2 not)" in text

    # --verify recomputes checksums: a corrupted chunk is named, exit 1
    arr = zarr.open_group(str(zarr_path(run / "epoch001" / "kernels" / "pntk-sub-train-sub-train")), mode="r+")
    arr["kernel"][0:10, 0:10] = 0.0
    rc, rows = ls_rows(capsys, "--verify", str(res))
    bad = {r["item"]: r for r in rows}["pntk-sub-train-sub-train"]
    assert rc == 1 and "tiles whose chunk differs from the manifest: 0_0" in bad["status"]
    assert main(["ls", str(tmp_path / "nowhere")]) == 2


# ------------------------------------------------------------------------------------------------
# pntk.open_kernel: every kind, symmetric and rectangular, no warnings


@pytest.mark.parametrize("kind", ["pntk", "entk", "first_logit", "trace"])
@pytest.mark.parametrize("rows_set", ["sub-train", "sub-test"], ids=["symmetric", "rectangular"])
def test_open_kernel_on_every_kind_of_store(kind, rows_set, tmp_path):
    import warnings

    import xarray as xr

    import pntk

    o = 3 if kind == "entk" else None
    cols = np.arange(100, 112)
    rows = cols if rows_set == "sub-train" else np.arange(500, 505)
    stem = tmp_path / "runs/digits/fcn-w16-s0/epoch001/kernels" / f"{kind}-{rows_set}-sub-train"
    paths = StorePaths(stem)
    tiles.init_store(paths.sentinel, kind=kind, row_ids=rows, col_ids=cols, row_labels=rows % 10,
                     col_labels=cols % 10, tile=5, dtype="float64", out_dim=o,
                     attrs={**ATTRS, "rows": rows_set, "cols": "sub-train"})
    g = np.random.default_rng(1).normal(size=(len(cols), 4))
    full = (g @ g.T)[: len(rows)] if rows_set == "sub-train" else np.random.default_rng(2).normal(size=(5, 12))
    if o:
        full = np.einsum("ij,ab->ijab", full, np.eye(o) + 0.1)  # (R, C, O, O)
    n_r, n_c = -(-len(rows) // 5), -(-len(cols) // 5)
    flags = []
    for i in range(n_r):
        for j in range(i if rows_set == "sub-train" else 0, n_c):
            flags.append(paths.flag(i, j))
            tiles.write_tile_and_flag(flags[-1], full[TileGrid(len(rows), len(cols), 5).slices(i, j)], i, j, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unfinished = pntk.open_kernel(paths.sentinel)
        assert unfinished.attrs["finalized"] is False
        tiles.finalize(paths.manifest, flags)
        for given in (paths.store, paths.manifest, paths.sentinel, stem, paths.flag(0, 0)):
            da = pntk.open_kernel(given)
            assert da.dims == (("row", "col", "out_row", "out_col") if o else ("row", "col"))
            np.testing.assert_array_equal(da.values, full)
            np.testing.assert_array_equal(da.row.values, rows)
            np.testing.assert_array_equal(da.col_label.values, cols % 10)
            assert da.attrs["kind"] == kind and da.attrs["checkpoint_sha256"] == "ab" * 32
            assert da.attrs["symmetric"] is (rows_set == "sub-train") and da.attrs["finalized"] is True
        plain = xr.open_zarr(paths.store)["kernel"]  # the kernel array carries the provenance too
        assert plain.attrs["kind"] == kind and plain.attrs["data_fingerprint"] == "cd" * 32
        assert zarr.open_group(str(paths.store), mode="r")["kernel"].attrs["epoch"] == 1


def test_open_kernel_names_a_missing_store(tmp_path):
    import pntk

    with pytest.raises(FileNotFoundError, match="no kernel store there"):
        pntk.open_kernel(tmp_path / "nope.manifest.json")


def test_prepared_store_in_its_rule_folder_opens_without_warnings(tmp_path):
    """prepare_data's output is the folder; Snakemake's timestamp there is not inside the Zarr group."""
    import warnings

    import xarray as xr

    from pntk.data import open_prepared, prepare_dataset, prepared_folder, prepared_store

    store = prepared_store(tmp_path, "digits")
    prepare_dataset("digits", None, store, train_size=30, test_size=10)
    (prepared_folder(tmp_path, "digits") / ".snakemake_timestamp").touch()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = open_prepared(prepared_folder(tmp_path, "digits"))
        b = open_prepared(store)
        ds = xr.open_zarr(store)
        assert a.fingerprint == b.fingerprint == ds.attrs["fingerprint"] and ds["x"].shape == (40, 1, 8, 8)


def test_output_survives_a_reader_that_leaves(good_root):
    """`pntk info … | head -1`: no BrokenPipeError traceback when head closes the pipe."""
    stores = " ".join(str(p) for p in sorted(good_root.rglob("*.zarr")))
    proc = subprocess.run(f"{sys.executable} -m pntk.cli info {' '.join([stores] * 200)} | head -1", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.count("\n") == 1 and proc.stderr == "", proc.stderr
