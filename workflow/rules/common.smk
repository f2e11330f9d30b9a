# Validation (before any job) and the path/target functions every rule file uses.
import hashlib
import math
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # the library, also without `pip install`

from pntk import config as pcfg  # noqa: E402
from pntk.data.prepared import prepared_folder  # noqa: E402
from pntk.paper import figure_set as fset  # noqa: E402
from pntk.runs import RUN_PATTERN, Run  # noqa: E402
from pntk.store.paths import StorePaths  # noqa: E402

def _dry_run():
    """A dry run plans jobs without touching data: local data files need not exist then."""
    return bool(workflow.output_settings.dryrun)


try:
    # Snakemake parses --configfile with a YAML loader that keeps the last of two equal keys: read the
    # files again, refusing duplicates, before validating what Snakemake merged.
    for _path in workflow.configfiles:
        pcfg.load_yaml_strict(_path)
    pcfg.validate_config(config, check_files=not _dry_run())
except pcfg.ConfigError as err:
    raise WorkflowError(str(err)) from None

R = config["results"]
DATASET = config["data"]["name"]
EPOCHS = sorted(config["train"]["checkpoint_epochs"])
RUNS = pcfg.runs(config)
RUN_DIR = f"{R}/runs/{RUN_PATTERN}"
EPOCH_DIR = f"{RUN_DIR}/epoch{{epoch}}"
KERNEL = StorePaths.in_epoch(EPOCH_DIR, "{kind}", "{rows}", "{cols}")  # file patterns of one kernel store
USES_CUDA = any(config[k]["device"].startswith("cuda") for k in ("train", "kernels", "regression", "timing", "active"))
CONDA_ENV = "../../envs/pntk-cuda.yaml" if USES_CUDA else "../../envs/pntk.yaml"
CLUSTER = config["resources"]


def heavy_cpu_threads():
    """Threads of the CPU-heavy rules: all of --cores on a workstation. A cluster run has no --cores
    (workflow.cores would raise) and the Snakemake inside a job sees the whole node, so there use
    resources.cpus_per_gpu: the SLURM request and the threads the job starts then agree."""
    cores = workflow.resource_settings.cores
    if cores is None or workflow.remote_exec:
        return CLUSTER["cpus_per_gpu"]
    return max(1, int(cores))


HEAVY_CPU = heavy_cpu_threads()


def device_threads(device):
    """Threads of a job on `device`: the CPUs that come with its GPU, one on CPU (light per-job work)."""
    return CLUSTER["cpus_per_gpu"] if device.startswith("cuda") else 1


def device_resources(device="cpu", **extra):
    """Resources of a job that runs on `device` (config `resources:`; profiles/slurm turns them into sbatch
    options): cuda → gpu=1 (`--gpus=<gpu_model>:1`), cpus_per_gpu, gpu_partition; cpu → cpu_partition.
    `extra` (runtime, mem_mb, ...) is passed through. `gpu` also caps GPU jobs at once on a workstation."""
    cuda = device.startswith("cuda")
    res = {"gpu": 1, "cpus_per_gpu": CLUSTER["cpus_per_gpu"]} if cuda else {}
    if cuda and CLUSTER["gpu_model"]:
        res["gpu_model"] = CLUSTER["gpu_model"]
    partition = CLUSTER["gpu_partition" if cuda else "cpu_partition"]
    if partition:
        res["slurm_partition"] = partition
    return {**res, **extra}


def kernel_mem_mb(kind, rows, cols, *, tile=False, floor=8000):
    """Host memory (MB) for a kind × rows × cols kernel (one tile of it with tile=True):
    resources.mem_mb_per_gb_kernel MB per GiB of kernel values, at least `floor`."""
    n, m = pcfg.index_set_size(config, rows), pcfg.index_set_size(config, cols)
    if tile:
        n, m = min(n, config["kernels"]["tile_size"]), min(m, config["kernels"]["tile_size"])
    outputs = pcfg.num_classes(config) ** 2 if kind == "entk" else 1
    gib = n * m * outputs * (8 if config["kernels"]["dtype"] == "float64" else 4) / 2**30
    return max(floor, math.ceil(gib * CLUSTER["mem_mb_per_gb_kernel"]))


wildcard_constraints:
    dataset=r"[a-z_0-9]+",
    arch="|".join(re.escape(n) for n in sorted(pcfg.model_names(config), key=len, reverse=True)),  # configured only
    width=r"\d+",
    seed=r"\d+",
    epoch=r"\d{3}",
    kind=r"pntk|entk|first_logit|trace",
    rows=r"sub-train|sub-test|train|test",
    cols=r"sub-train|sub-test|train|test",
    i=r"\d+",
    j=r"\d+",


def code_digest(*modules):
    """sha256 of the library modules a cached rule runs (the output cache hashes the script only)."""
    h = hashlib.sha256()
    for m in modules:
        h.update((Path(workflow.basedir) / "src" / "pntk" / f"{m}.py").read_bytes())
    return h.hexdigest()


def data_store(wildcards=None):
    """The prepare_data output folder (scripts open the store inside it with pntk.data.open_prepared)."""
    return str(prepared_folder(R, DATASET))


def run_of(wildcards):
    return Run(wildcards.dataset, wildcards.arch, int(wildcards.width), int(wildcards.seed))


def checkpoint_of(wildcards):
    return str(run_of(wildcards).checkpoint(R, int(wildcards.epoch)))


def run_dirs():
    return [str(r.dir(R)) for r in RUNS]


def epoch_dirs():
    return [str(r.epoch_dir(R, e)) for r in RUNS for e in EPOCHS]


def manifests_of(epoch_dir):
    return [str(StorePaths.in_epoch(epoch_dir, k, r, c).manifest) for k, r, c in pcfg.store_specs(config)]


def store_manifest(wildcards, kind, rows, cols):
    """Manifest of the configured store that covers (rows, cols) for this run and epoch."""
    found = pcfg.find_store(config, kind, rows, cols)
    if found is None:
        raise WorkflowError(f"kernels.index_sets.{kind}: no store covers ({rows}, {cols})")
    return str(StorePaths.in_epoch(EPOCH_DIR.format(**wildcards), kind, *found).manifest)


def has_full_pntk():
    return (pcfg.find_store(config, "pntk", "train", "train") == ("train", "train")
            and pcfg.find_store(config, "pntk", "test", "train") == ("test", "train"))


def all_targets():
    targets = [data_store()]
    targets += [f"{d}/train_log.csv" for d in run_dirs()]
    targets += [m for d in epoch_dirs() for m in manifests_of(d)]
    targets += figure_targets()
    targets += active_targets()
    return targets


# --- kernels
def tile_flags(wildcards):
    paths = StorePaths(Path(str(KERNEL.stem).format(**wildcards)))
    return [str(paths.flag(i, j)) for i, j in pcfg.tile_grid(config, wildcards.rows, wildcards.cols)]


# --- diagnostics
def diag_manifests(wildcards):
    return {
        "entk_dd": store_manifest(wildcards, "entk", "sub-train", "sub-train"),
        "entk_xd": store_manifest(wildcards, "entk", "sub-test", "sub-train"),
        "pntk_dd": store_manifest(wildcards, "pntk", "sub-train", "sub-train"),
        "pntk_xd": store_manifest(wildcards, "pntk", "sub-test", "sub-train"),
    }


# --- figures
def figure_numbers():
    nums = [10, 15]
    if config["timing"]["enabled"]:
        nums.append(1)
    if config["diagnostics"]["enabled"]:
        nums += [2, 3, 4, 5, 6, 7, 8, 13]
    if has_full_pntk():
        nums += [9, 11, 12]
    if config["infinite"]["enabled"]:
        nums.append(14)
    if heatmap_manifest():
        nums.append(16)
    return sorted(nums)


def heatmap_manifest():
    found = pcfg.find_store(config, "pntk", "sub-train", "sub-train")
    if found is None or not RUNS:
        return None
    return str(StorePaths.in_epoch(RUNS[0].epoch_dir(R, EPOCHS[-1]), "pntk", *found).manifest)


def figure_outputs():
    out = {}
    for n, name in zip(figure_numbers(), fset.figure_names(figure_numbers())):
        for ext in config["figures"]["formats"]:
            path = f"{R}/figures/{name}.{ext}"
            cap = f"{workflow.basedir}/workflow/report/fig{n:02d}.rst"
            out[f"fig{n:02d}_{ext}"] = report(path, caption=cap, category="Figures") if ext == "png" else path
    return out


def figure_targets():
    return list(figure_outputs().values()) + [f"{R}/tables/{t}.csv" for t in ("diagnostics", "regression", "training", "rate")]


def figure_inputs(wildcards):
    inp = {
        "diagnostics": f"{R}/tables/diagnostics.csv",
        "regression": f"{R}/tables/regression.csv",
        "training": f"{R}/tables/training.csv",
        "rate": f"{R}/tables/rate.csv",
        "data": data_store(),
    }
    if config["timing"]["enabled"]:
        inp["timing"] = f"{R}/timing/{DATASET}.csv"
    if config["infinite"]["enabled"]:
        inp["infinite"] = f"{R}/tables/infinite.csv"
    if heatmap_manifest():
        inp["kernel_manifest"] = heatmap_manifest()
    return inp


# --- active learning
ACTIVE_RUN = f"{R}/active/{{dataset}}/{{strategy}}-s{{seed}}"


def active_csvs():
    a = config["active"]
    return [f"{R}/active/{DATASET}/{s}-s{seed}.csv" for s in a["strategies"] for seed in a["seeds"]]


def active_figure_outputs():
    out = {}
    for name in ("accuracy", "time"):
        for ext in config["figures"]["formats"]:
            path = f"{R}/figures/active-{name}.{ext}"
            cap = f"{workflow.basedir}/workflow/report/active-{name}.rst"
            out[f"{name}_{ext}"] = report(path, caption=cap, category="Active learning") if ext == "png" else path
    return out


def active_targets():
    if not config["active"]["enabled"]:
        return []
    return [f"{R}/tables/active.csv"] + list(active_figure_outputs().values())
