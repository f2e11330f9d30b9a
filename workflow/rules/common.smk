# Validation (before any job) and the path/target functions every rule file uses.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # the library, also without `pip install`

from pntk import config as pcfg  # noqa: E402

try:
    pcfg.validate_config(config, check_files=not workflow.dryrun)
except pcfg.ConfigError as err:
    raise WorkflowError(str(err)) from None

R = config["results"]
DATASET = config["data"]["name"]
EPOCHS = sorted(config["train"]["checkpoint_epochs"])
RUNS = pcfg.runs(config)
RUN_DIR = R + "/runs/{dataset}/{arch}-w{width}-s{seed}"
EPOCH_DIR = RUN_DIR + "/epoch{epoch}"
KERNEL_STEM = EPOCH_DIR + "/kernels/{kind}-{rows}-{cols}"
HEAVY_CPU = max(1, workflow.cores if isinstance(workflow.cores, int) else 1)
GPU_JOB_THREADS = config["resources"]["cpus_per_gpu"]


wildcard_constraints:
    dataset=r"[a-z_0-9]+",
    arch=r"fcn|convnet|resnet18|wrn16",
    width=r"\d+",
    seed=r"\d+",
    epoch=r"\d{3}",
    kind=r"pntk|entk|first_logit|trace",
    rows=r"sub-train|sub-test|train|test",
    cols=r"sub-train|sub-test|train|test",
    i=r"\d+",
    j=r"\d+",


def data_store(wildcards=None):
    return f"{R}/data/{DATASET}.zarr"


def checkpoint_of(wildcards):
    return f"{R}/runs/{wildcards.dataset}/{wildcards.arch}-w{wildcards.width}-s{wildcards.seed}/checkpoints/epoch{wildcards.epoch}.pt"


def run_dirs():
    return [f"{R}/runs/{r.name}" for r in RUNS]


def epoch_dirs():
    return [f"{d}/epoch{e:03d}" for d in run_dirs() for e in EPOCHS]


def manifests_of(epoch_dir):
    return [f"{epoch_dir}/kernels/{k}-{r}-{c}.manifest.json" for k, r, c in pcfg.store_specs(config)]


def store_manifest(wildcards, kind, rows, cols):
    """Manifest of the configured store that covers (rows, cols) for this run and epoch."""
    found = pcfg.find_store(config, kind, rows, cols)
    if found is None:
        raise WorkflowError(f"kernels.index_sets.{kind}: no store covers ({rows}, {cols})")
    base = EPOCH_DIR.format(**wildcards)
    return f"{base}/kernels/{kind}-{found[0]}-{found[1]}.manifest.json"


def has_full_pntk():
    return (pcfg.find_store(config, "pntk", "train", "train") == ("train", "train")
            and pcfg.find_store(config, "pntk", "test", "train") == ("test", "train"))


def all_targets():
    targets = [data_store()]
    targets += [f"{d}/train_log.csv" for d in run_dirs()]
    targets += [m for d in epoch_dirs() for m in manifests_of(d)]
    targets += figure_targets()
    return targets
