"""The real workflow on the user's own model module and .npz file, both outside the repository.

examples/my_models.py and examples/digits-small.npz are copied to a folder beside the working directory
and named in a shrunk copy of examples/my-models.yaml (`python_path: [../elsewhere]`). One run serves
every test here: stores verify and equal the reference engine on the checkpoints, `pntk ls` lists them,
every store opens without a warning, tables carry the readout widths read from the models, and an edit
of the model file re-runs the training that used it.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
KINDS = {"pntk": [["train", "train"], ["test", "train"]],  # symmetric and rectangular stores of every kind
         "entk": [["sub-train", "sub-train"], ["sub-test", "sub-train"]],
         "first_logit": [["sub-test", "sub-train"]], "trace": [["sub-train", "sub-train"]]}

pytestmark = pytest.mark.slow


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(work), "--configfile",
           str(work / "config.yaml"), "--cores", "2", *args]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)


@pytest.fixture(scope="module")
def user_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("own")
    elsewhere, work = root / "elsewhere", root / "work"
    elsewhere.mkdir()
    work.mkdir()
    shutil.copy(EXAMPLES / "my_models.py", elsewhere / "my_models.py")
    shutil.copy(EXAMPLES / "digits-small.npz", elsewhere / "digits.npz")
    cfg = yaml.safe_load((EXAMPLES / "my-models.yaml").read_text())  # the shipped example, shrunk
    cfg.update(results="results", python_path=["../elsewhere"], figures={"formats": ["png"]})
    cfg["data"].update(path="../elsewhere/digits.npz", subset_train=20, subset_test=10)
    cfg["models"][0].update(widths=[2], kwargs={"depth": 1})
    cfg["models"][1].update(widths=[8, 16])
    cfg["train"].update(epochs=1, checkpoint_epochs=[0])  # kernels at init: the width-rate fit of Theorem 1
    cfg["kernels"].update(kinds=list(KINDS), index_sets=KINDS, tile_size=64)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    t0 = time.perf_counter()
    proc = snakemake(work)
    assert proc.returncode == 0, proc.stdout[-6000:]
    print(f"own models workflow: {time.perf_counter() - t0:.1f} s")
    return work


def stores_of(work: Path) -> list[Path]:
    return sorted((work / "results" / "runs").glob("*/*/epoch*/kernels/*.zarr"))


def test_every_store_verifies_and_equals_the_reference_engine(user_run):
    import torch

    import pntk
    from pntk.cli import main
    from pntk.data import open_prepared
    from pntk.kernels import empirical_kernel
    from pntk.train import load_checkpoint

    stores = stores_of(user_run)
    runs = sorted({s.parents[2].name for s in stores})
    assert runs == ["cnn-w2-s0", "layernorm_mlp-w16-s0", "layernorm_mlp-w8-s0"]
    assert len(stores) == len(runs) * 6
    assert main(["verify", *map(str, stores)]) == 0
    data = open_prepared(user_run / "results" / "data" / "npz")
    for store in stores:
        da = pntk.open_kernel(store)
        model, meta = load_checkpoint(store.parents[2] / "checkpoints" / f"{store.parents[1].name}.pt")
        assert meta["spec"]["arch"].startswith("my_models:") and meta["model_source"]
        x1 = torch.as_tensor(data.x[da.row.values], dtype=torch.float64)
        x2 = None if da.attrs["symmetric"] else torch.as_tensor(data.x[da.col.values], dtype=torch.float64)
        ref = empirical_kernel(model.double(), x1, x2, kind=da.attrs["kind"], method="reference").numpy()
        np.testing.assert_allclose(da.values, ref, rtol=1e-10, atol=1e-12, err_msg=str(store))


def test_ls_lists_every_store_with_its_tiles(user_run, capsys):
    from pntk.cli import main

    assert main(["ls", "--json", str(user_run / "results")]) == 0
    rows = json.loads(capsys.readouterr().out)
    listed = {Path(r["path"]) for r in rows if r["tiles"] != "-"}
    assert listed == set(stores_of(user_run))
    for r in rows:
        if r["tiles"] != "-":
            done, total = r["tiles"].split("/")
            assert done == total and r["status"] == "verified", r
    assert sum(r["item"] == "checkpoint" for r in rows) == 3 and any(r["kind"] == "data" for r in rows)


def test_every_store_opens_without_a_warning(user_run):
    import xarray as xr
    import zarr

    import pntk
    from pntk.data import open_prepared, prepared_folder, prepared_store

    res = user_run / "results"
    folder, data_store = prepared_folder(res, "npz"), prepared_store(res, "npz")
    assert (folder / ".snakemake_timestamp").is_file()  # Snakemake marks its directory output here,
    assert not list(data_store.rglob(".snakemake_timestamp"))  # not inside the Zarr group
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_prepared(folder)
        xr.open_zarr(data_store).load()
        zarr.open_group(str(data_store), mode="r").members()
        for store in stores_of(user_run):
            assert pntk.open_kernel(store).attrs["finalized"] is True
            assert xr.open_zarr(store)["kernel"].attrs["checkpoint_sha256"]
            zarr.open_group(str(store), mode="r").members()


def test_tables_read_readout_widths_from_the_models(user_run):
    import pandas as pd

    diag = pd.read_csv(user_run / "results" / "tables" / "diagnostics.csv")
    widths = diag.groupby(["arch", "width"]).readout_width.unique().to_dict()
    assert {k: list(v) for k, v in widths.items()} == {("cnn", 2): [2 * 64], ("layernorm_mlp", 8): [8],
                                                        ("layernorm_mlp", 16): [16]}
    rate = pd.read_csv(user_run / "results" / "tables" / "rate.csv")
    assert rate.set_index("arch").loc["layernorm_mlp", "readout_widths"] == "8 16"


def test_predictions_carry_their_provenance(user_run):
    import xarray as xr

    import pntk
    from pntk.provenance import sha256_file

    ncs = sorted((user_run / "results" / "runs").glob("*/*/epoch*/predictions.nc"))
    assert len(ncs) == 3
    for nc in ncs:
        with xr.open_dataset(nc, engine="scipy") as ds:
            a = ds.attrs
            assert (a["kernel_kind"], a["ridge"], a["t"], a["pntk_version"]) == ("pntk", 0.0, "inf", pntk.__version__)
            assert a["solver"] in ("cholesky", "eigh", "cg") and a["solver_n_train"] == 120
            assert a["checkpoint_sha256"] == sha256_file(nc.parents[1] / "checkpoints" / f"{nc.parent.name}.pt")
            for key, store in (("dd", "pntk-train-train"), ("xd", "pntk-test-train")):
                manifest = nc.parent / "kernels" / f"{store}.manifest.json"
                assert a[f"manifest_{key}"] == str(manifest.relative_to(user_run))
                assert a[f"manifest_{key}_sha256"] == sha256_file(manifest)
            assert all(ds[v].attrs["description"] for v in ("flin", "f0", "label"))


def test_nothing_to_do_until_the_model_file_changes(user_run):
    out = snakemake(user_run, "-n").stdout
    assert "Nothing to be done" in out, out[-3000:]
    module = user_run.parent / "elsewhere" / "my_models.py"
    original = module.read_text()
    try:
        module.write_text(original + "\n# edited\n")
        out = snakemake(user_run, "-n").stdout
        assert "train" in out and "params" in out.lower(), out[-3000:]
        assert "cnn-w2-s0/train_log.csv" in out and "layernorm_mlp-w8-s0/train_log.csv" in out
    finally:
        module.write_text(original)
