"""Kernel stores on S3-compatible object storage and read-only over http(s), against real servers: moto in
server mode (S3) and nginx (static files with range requests, access log counted). No mocks: real zarr
stores, real tile jobs, the real `pntk` command line."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from servers import KEY_ID, SECRET, free_port

from pntk import kernel_jobs, open_kernel
from pntk.cli import main as pntk_main
from pntk.store import remote, tiles
from pntk.store import zarr_store as S
from pntk.store.paths import StorePaths
from pntk.tiling import TileGrid, is_symmetric

DATA_CFG = {"subset_train": 10, "subset_test": 6, "seed": 0}
SPECS = [("pntk", "sub-train", "sub-train"), ("entk", "sub-test", "sub-train")]

pytestmark = pytest.mark.timeout(300)


# -- stores ------------------------------------------------------------------------------------------------
def write_synthetic(stem, *, n=16, tile=4, symmetric=True, seed=0, dtype="float32", spd=False) -> np.ndarray:
    """A store written tile by tile through the tile protocol (init, tile + flag, finalize) with values
    from a generator: the library's own write path, without a model. Returns the full kernel."""
    rng = np.random.default_rng(seed)
    ids = np.arange(100, 100 + n)
    cols = ids if symmetric else ids + 100
    full = rng.standard_normal((n, n)).astype(dtype)
    if symmetric:
        full = (full @ full.T / n + np.eye(n) if spd else full + full.T).astype(dtype)
    paths = StorePaths.of(stem)
    tiles.init_store(paths.sentinel, kind="pntk", row_ids=ids, col_ids=cols, row_labels=ids % 10,
                     col_labels=cols % 10, tile=tile, dtype=dtype, out_dim=None,
                     attrs={"rows": "train", "cols": "train", "method_requested": "test"})
    flags = []
    for i, j in TileGrid(n, n, tile, symmetric).tiles():
        flags.append(paths.flag(i, j))
        block = full[i * tile:(i + 1) * tile, j * tile:(j + 1) * tile]
        tiles.write_tile_and_flag(flags[-1], block, i, j, 0.01, {"method": "test"})
    tiles.finalize(paths.manifest, flags)
    return full


def local_files(stem: Path) -> dict[str, bytes]:
    """{path relative to the stem's folder: bytes} of every file of a local store."""
    return {str(p.relative_to(stem.parent)): p.read_bytes() for p in StorePaths(stem).files()}


def s3_files(prefix: str) -> dict[str, bytes]:
    root = remote.as_path(prefix)
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*")}


def run_jobs(stem, kind, rows, cols, data, checkpoint) -> None:
    """The per-tile rules: init job, one tile job per tile, finalize."""
    cfg = {"tile_size": 4, "dtype": "float64", "method": "auto", "batch_size": None, "device": "cpu"}
    paths = StorePaths.of(stem)
    kernel_jobs.init_job(paths.sentinel, kind=kind, rows=rows, cols=cols, data_path=data, checkpoint=checkpoint,
                         kernels_cfg=cfg, data_cfg=DATA_CFG)
    g = zarr.open_group(remote.zarr_store(paths.store, read_only=True), mode="r")
    flags = []
    for i, j in TileGrid(g["row"].shape[0], g["col"].shape[0], 4, is_symmetric(rows, cols)).tiles():
        flags.append(paths.flag(i, j))
        kernel_jobs.tile_job(flags[-1], kind=kind, rows=rows, cols=cols, i=i, j=j, data_path=data,
                             checkpoint=checkpoint, kernels_cfg=cfg, data_cfg=DATA_CFG)
    tiles.finalize(paths.manifest, flags, inputs={"checkpoint": checkpoint, "sentinel": paths.sentinel})


# -- S3 ----------------------------------------------------------------------------------------------------
def test_tile_jobs_on_s3_equal_the_local_store_bitwise(s3, small_digits_store, fcn_checkpoint, tmp_path, one_thread,
                                                         caplog):
    """init job, tile jobs and finalize with an s3:// store: the same chunk bytes, flags' checksums,
    manifest tiles and attrs as the same jobs writing a local store; verify passes there; no credential
    is written anywhere (objects, manifest, logs)."""
    caplog.set_level("INFO")  # what job logs hold (botocore's own DEBUG output signs requests)
    caplog.set_level("DEBUG", logger="pntk")
    for kind, rows, cols in SPECS:
        name = f"{kind}-{rows}-{cols}"
        local = tmp_path / "local" / "epoch001" / "kernels" / name
        url = f"{s3}/results/runs/digits/fcn-w8-s0/epoch001/kernels/{name}"
        run_jobs(local, kind, rows, cols, small_digits_store, fcn_checkpoint)
        run_jobs(url, kind, rows, cols, small_digits_store, fcn_checkpoint)

        lp, rp = StorePaths(local), StorePaths.of(url)
        assert isinstance(rp.store, remote.RemotePath) and str(rp.store) == url + ".zarr"
        res = tiles.verify(rp.store)
        assert res["ok"], res
        assert res["n_tiles"] == len(TileGrid.of_store(S.kernel_array(lp.store)).all_tiles())
        # every chunk object is byte for byte the local chunk file
        lchunks = {str(p.relative_to(lp.store)): p.read_bytes() for p in lp.store.rglob("*")
                   if p.is_file() and "/c/" in f"/{p.relative_to(lp.store)}"}
        rchunks = {k: v for k, v in s3_files(str(rp.store)).items() if "/c/" in f"/{k}"}
        assert lchunks and lchunks == rchunks
        assert S.kernel_array(lp.store)[...].tobytes() == S.kernel_array(rp.store)[...].tobytes()
        lman, rman = (json.loads(p.manifest.read_text()) for p in (lp, rp))
        assert lman["tiles"] == rman["tiles"] and lman["attrs"] == rman["attrs"]
        assert lman["inputs"]["checkpoint"] == rman["inputs"]["checkpoint"]
        assert sorted(f.name for f in lp.flag_files()) == sorted(f.name for f in rp.flag_files())
        # consolidated at finalize: zarr.json alone describes every array (a remote open is one read)
        meta = json.loads((rp.store / "zarr.json").read_text())
        assert meta["attributes"]["method"] == lman["attrs"]["method"]
        assert set(meta["consolidated_metadata"]["metadata"]) >= {"kernel", "row", "col", "row_label"}
        K = open_kernel(rp.manifest)
        assert K.attrs["finalized"] and K.attrs["store"] == url + ".zarr"
        np.testing.assert_array_equal(K.values, open_kernel(lp.manifest).values)

    written = b"".join(s3_files(s3).values()) + caplog.text.encode()
    written += b"".join(p.read_bytes() for p in (tmp_path / "local").rglob("*") if p.is_file())
    for secret in (KEY_ID, SECRET):
        assert secret.encode() not in written


def test_checkpoint_job_resumes_on_s3(s3, small_digits_store, fcn_checkpoint, tmp_path, one_thread):
    """`kernels.jobs: per_checkpoint` into s3://: all stores finalized; a second run keeps every tile."""
    cfg = {"tile_size": 4, "dtype": "float64", "method": "auto", "batch_size": None, "device": "cpu"}
    manifests = [f"{s3}/e/kernels/{k}-{r}-{c}.manifest.json" for k, r, c in SPECS]
    kernel_jobs.checkpoint_job(manifests, SPECS, data_path=small_digits_store, checkpoint=fcn_checkpoint,
                               kernels_cfg=cfg, data_cfg=DATA_CFG)
    before = s3_files(s3)
    kernel_jobs.checkpoint_job(manifests, SPECS, data_path=small_digits_store, checkpoint=fcn_checkpoint,
                               kernels_cfg=cfg, data_cfg=DATA_CFG)
    after = s3_files(s3)
    chunks = {k for k in before if "/c/" in k}
    assert chunks and all(before[k] == after[k] for k in chunks)  # resumed: no tile recomputed
    for m in manifests:
        assert tiles.verify(StorePaths.of(m).store)["ok"]


def test_cli_info_verify_ls_on_s3(s3, capsys):
    root = f"{s3}/res/runs/digits/fcn-w8-s0"
    full = write_synthetic(f"{root}/epoch000/kernels/pntk-train-train")
    write_synthetic(f"{root}/epoch010/kernels/pntk-test-train", symmetric=False, seed=1)
    store = f"{root}/epoch000/kernels/pntk-train-train.zarr"

    assert pntk_main(["info", "--json", store]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["store"] == store and info["shape"] == [16, 16] and info["tile_grid"] == [4, 4]
    assert info["tiles_written"] == 16 and info["finalized"]

    assert pntk_main(["verify", store]) == 0
    assert capsys.readouterr().out.startswith(f"OK      {store} (16 tiles)")
    assert pntk_main(["verify", f"{s3}/res/"]) == 0  # a prefix: every store under it
    assert capsys.readouterr().out.count("OK ") == 2

    assert pntk_main(["ls", f"{s3}/res"]) == 0
    out = capsys.readouterr().out
    assert "pntk-train-train" in out and "pntk-test-train" in out and "verified" in out, out
    assert pntk_main(["ls", "--verify", "--json", f"{s3}/res"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["run"], r["epoch"], r["status"]) for r in rows] == [
        ("fcn-w8-s0", "000", "checksums OK"), ("fcn-w8-s0", "010", "checksums OK")]
    assert all(r["size"] > 16 * 16 * 4 for r in rows)

    # a damaged chunk object is found
    chunk = remote.as_path(f"{store}/kernel/c/1/2")
    chunk.write_bytes(np.zeros(16, dtype=np.float32).tobytes())
    assert pntk_main(["verify", store]) == 1
    assert "tiles whose chunk differs from the manifest: 1_2" in capsys.readouterr().out
    assert S.kernel_array(store)[0:4, 0:4].tobytes() == full[0:4, 0:4].tobytes()


def test_s3_errors_name_the_url(s3, s3_server, monkeypatch, capsys):
    # a bucket that does not exist
    bad = "s3://pntk-no-such-bucket/x/pntk-train-train.zarr"
    assert pntk_main(["info", bad]) == 2
    err = capsys.readouterr().err
    assert "s3://pntk-no-such-bucket" in err and "no bucket" in err and s3_server in err
    with pytest.raises(remote.RemoteStoreError, match="no bucket s3://pntk-no-such-bucket"):
        write_synthetic("s3://pntk-no-such-bucket/x/pntk-train-train")
    # a store that is not there
    with pytest.raises(FileNotFoundError, match=f"{s3}/nothing.zarr: no kernel store there"):
        open_kernel(f"{s3}/nothing.zarr")
    # credentials in the URL are refused without being repeated
    with pytest.raises(remote.RemoteStoreError, match="credentials in a store URL") as exc:
        open_kernel(f"s3://{KEY_ID}:{SECRET}@bucket/k.zarr")
    assert SECRET not in str(exc.value)
    # unsupported scheme
    with pytest.raises(remote.RemoteStoreError, match="unsupported URL scheme 'ftp'"):
        open_kernel("ftp://host/k.zarr")
    # an endpoint that does not answer: fails within seconds, naming it
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", dead)
    t0 = time.monotonic()
    with pytest.raises(remote.RemoteStoreError, match=f"{s3}/k.*S3 endpoint {dead}"):
        write_synthetic(f"{s3}/k/pntk-train-train")
    assert time.monotonic() - t0 < 30
    # no endpoint at all: AWS itself, which this test machine cannot reach (or refuses the fake keys)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    assert pntk_main(["info", f"{s3}/k.zarr"]) == 2
    err = capsys.readouterr().err
    assert f"{s3}/k.zarr" in err and "set AWS_ENDPOINT_URL_S3" in err


def test_regression_solve_on_s3_equals_local(s3, tmp_path):
    """The out-of-core solver streams an s3:// store as it streams a local one: the same answer, bitwise."""
    from pntk.regression import ZarrKernelOperator, cg_solve

    full = write_synthetic(tmp_path / "k" / "pntk-train-train", n=24, tile=8, spd=True)
    write_synthetic(f"{s3}/reg/pntk-train-train", n=24, tile=8, spd=True)
    B = np.random.default_rng(1).standard_normal((24, 3))
    answers = []
    for where in (tmp_path / "k" / "pntk-train-train.zarr", f"{s3}/reg/pntk-train-train.zarr"):
        op = ZarrKernelOperator(str(where), block_bytes=8 * 24 * 8)  # several row blocks per product
        X, info = cg_solve(op, torch.from_numpy(B), tol=1e-12)
        assert info.converged
        answers.append(X.numpy())
    assert answers[0].tobytes() == answers[1].tobytes()
    np.testing.assert_allclose(answers[0], np.linalg.solve(full.astype(np.float64), B), rtol=1e-8, atol=1e-10)


# -- HTTP --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(nginx, tmp_path_factory):
    """A finalized 16 × 16 float32 store of 4 × 4 tiles (4 × 4 chunks of 64 B), written locally then
    served as static files by nginx; yields (url stem, local stem, values)."""
    stem = nginx.root / "runs" / "fcn-w8-s0" / "epoch000" / "kernels" / "pntk-train-train"
    full = write_synthetic(stem)
    return f"{nginx.url}/runs/fcn-w8-s0/epoch000/kernels/pntk-train-train", stem, full


def chunk_gets(requests) -> list[str]:
    return [uri for method, uri, status, _ in requests if method == "GET" and "/kernel/c/" in uri and status == 200]


def test_http_slice_reads_only_the_chunks_it_touches(nginx, served):
    url, _, full = served
    start = nginx.mark()
    K = open_kernel(url + ".zarr")
    opened = nginx.requests()[start:]
    assert chunk_gets(opened) == []  # opening reads metadata and coordinates, no kernel value
    meta_gets = [u for m, u, _, _ in opened if u.endswith("zarr.json")]
    assert len(meta_gets) == 1, opened  # consolidated: one metadata read for every array
    assert not any(u.endswith((".zgroup", ".zattrs", ".zmetadata", ".zarray")) for _, u, _, _ in opened)

    start = nginx.mark()
    block = K.isel(row=slice(4, 8), col=slice(8, 12)).values  # tile (1, 2)
    got = nginx.requests()[start:]
    np.testing.assert_array_equal(block, full[4:8, 8:12])
    assert chunk_gets(got) == [url.removeprefix(nginx.url) + ".zarr/kernel/c/1/2"], got

    start = nginx.mark()
    np.testing.assert_array_equal(K.values, full)
    assert len(chunk_gets(nginx.requests()[start:])) == 16  # the whole store: every chunk once
    assert K.attrs["finalized"] and K.attrs["store"] == url + ".zarr" and K.attrs["kind"] == "pntk"


def test_http_open_any_file_info_and_verify(nginx, served, capsys):
    url, stem, full = served
    K = open_kernel(url + ".manifest.json")
    np.testing.assert_array_equal(K.sel(row=[103, 100], col=[115]).values, full[[3, 0]][:, [15]])
    assert pntk_main(["info", "--json", url + ".zarr"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tiles_written"] == 16 and info["finalized"] and info["manifest"] == url + ".manifest.json"
    assert pntk_main(["verify", url + ".zarr"]) == 0
    assert capsys.readouterr().out.startswith(f"OK      {url}.zarr (16 tiles)")


def test_http_is_read_only(served):
    url, _, _ = served
    with pytest.raises(remote.RemoteStoreError, match=r"read-only .*write to s3://"):
        S.write_tile(url + ".zarr", 0, 0, np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(remote.RemoteStoreError, match="read-only"):
        write_synthetic(url.replace("pntk-train-train", "pntk-test-test"))


def test_http_missing_store_or_server_is_named(nginx):
    with pytest.raises(FileNotFoundError, match=f"{nginx.url}/nowhere.zarr: no kernel store there"):
        open_kernel(f"{nginx.url}/nowhere.zarr")
    dead = f"http://127.0.0.1:{free_port()}/k/pntk-train-train.zarr"
    with pytest.raises(remote.RemoteStoreError, match=f"{dead}: cannot open the store"):
        open_kernel(dead)


def test_local_paths_unchanged(tmp_path):
    """A local stem still gives Paths (and the same files) after the URL support."""
    p = StorePaths.of(tmp_path / "k" / "pntk-train-train.manifest.json")
    assert isinstance(p.store, Path) and p.store == tmp_path / "k" / "pntk-train-train.zarr"
    assert isinstance(StorePaths.of("file://" + str(tmp_path / "x.zarr")).store, Path)
    full = write_synthetic(tmp_path / "k" / "pntk-train-train", n=8, tile=4)
    np.testing.assert_array_equal(open_kernel(p.manifest).values, full)
    assert remote.zarr_store(p.store, read_only=True) == str(p.store)


def test_open_streams_a_large_file_in_bounded_memory(nginx, s3, tmp_path):
    """RemotePath.open as a published archive's import reads files: a 40 MiB file over http and from S3 is
    streamed to disk while hashed, holding a few MiB at most (http: one GET; S3: one GET per 4 MiB)."""
    import hashlib
    import tracemalloc

    from pntk.archive.published import fetch

    data = np.random.default_rng(0).bytes(40 << 20)
    (nginx.root / "big.bin").write_bytes(data)
    remote.as_path(f"{s3}/big.bin").write_bytes(data)
    want = (hashlib.sha256(data).hexdigest(), len(data))
    del data
    start = nginx.mark()
    for root in (remote.as_path(nginx.url), remote.as_path(s3)):
        tracemalloc.start()
        try:
            got = fetch(root, "big.bin", tmp_path / "big.bin", want[1])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert got == want and (tmp_path / "big.bin").stat().st_size == want[1]
        assert peak < 24 << 20, f"{root}: {peak / 2**20:.1f} MiB held at most"
    assert [(m, u) for m, u, *_ in nginx.requests()[start:]] == [("GET", "/big.bin")]
