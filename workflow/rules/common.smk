# Validation (before any job) and the path/target functions every rule file uses.
import hashlib
import json
import math
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # the library, also without `pip install`

from pntk import config as pcfg  # noqa: E402
from pntk.code_closure import closure_digest as _closure_digest  # noqa: E402
from pntk.data.prepared import store_in  # noqa: E402
from pntk import layout as lay  # noqa: E402
from pntk.analysis.infinite import ANALYTIC_ARCHS  # noqa: E402
from pntk.models import DEFAULT_DEPTH  # noqa: E402
from pntk.report import figure_table as ftab  # noqa: E402
from pntk.runs import ON_CONSTRAINT, RUN_PATTERN, TRAINED_ON, Run  # noqa: E402
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
if workflow.is_main_process:  # once, not again in every job's own Snakemake
    for _warning in pcfg.config_warnings(config):
        logger.warning(f"WARNING: {_warning}")

R = config["results"]
L = lay.Layout(R)  # every path under results/ (pntk.layout)
DATASET = config["data"]["name"]
EPOCHS = pcfg.checkpoint_epochs(config)  # of the runs trained on the train split
RUNS = pcfg.all_runs(config)  # on the train split, then (diagnostics.train_on: D) on D
# The kinds of run the workflow trains: what they are trained on → the literal suffix of their folder names.
# Rules whose declared outputs differ by kind (the checkpoints, a checkpoint's stores) come once per kind.
REGIMES = {on: TRAINED_ON[on] for on in ("train", "D") if pcfg.runs(config, on)}
# The kinds whose steps are separate rules (diagnostics.jobs: per_run gives the networks on D one job each).
SEPARATE = {on: s for on, s in REGIMES.items() if not (on == "D" and pcfg.d_runs_in_one_job(config))}
SEPARATE_ON = "|".join(re.escape(s) or "(?:)" for s in SEPARATE.values())  # the {on} of the separate rules
AT_INIT = pcfg.networks_at_init(config)  # {(model name, width): networks at initialisation only}
RUN_DIR = L.run_pattern
EPOCH_DIR = L.epoch_pattern
KERNEL = L.store(EPOCH_DIR, "{kind}", "{rows}", "{cols}")  # file patterns of one kernel store
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


def regression_threads():
    """Every core for an out-of-core regression (N ≥ 10,000: CG streaming the store), one for a small one
    (a dense solve of a few thousand points takes seconds on one core). A job asking for all cores starts
    only when all are free: on the default run the 20 two-core regressions waited behind every one-core
    job and ran last, one at a time."""
    n_train, _ = pcfg.split_sizes(config)
    return HEAVY_CPU if n_train >= pcfg.REGRESSION_ALL_CORES_FROM else 1


# Scheduling priorities (higher first; Snakemake's default is 0). The critical path is train → kernels →
# diagnostics/regression → tables → figures → report; infinite-width and active learning depend on
# nothing but the data and fill the cores while it waits. Without them the scheduler started all 21
# active-learning jobs of the default run before the first train and left a core idle at the end
# (12.2 min for 9.7 min of work on 2 cores).
PRIORITY = {
    "timing": 95,  # Fig 1 on an idle machine (it holds every core): before anything else starts
    "train": 90,
    "kernels": 80,
    "active_seed": 75,  # active.jobs: per_seed — long jobs first, so the short ones fill the end
    "per_checkpoint": 70,  # diagnostics, regression
    "tables": 60,
    "figures": 50,
    "fillers": 10,  # infinite_width
    "active_figures": 5,
}


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
    on=ON_CONSTRAINT,  # "" (trained on the train split) or "-onD"
    epoch=r"\d{3}",
    kind=r"pntk|entk|first_logit|trace",
    rows=r"sub-train|sub-test|train|test",
    cols=r"sub-train|sub-test|train|test",
    i=r"\d+",
    j=r"\d+",


def closure_digest(*scripts):
    """sha256 of the library code a cached rule's script imports, transitively (the output cache hashes the
    script and params only; pntk.code_closure); of several scripts, the sha256 of their digests in order."""
    digests = [_closure_digest(Path(workflow.basedir) / s, Path(workflow.basedir) / "src") for s in scripts]
    return digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()


def data_store(wildcards=None):
    """The prepare_data output folder (scripts open the store inside it with pntk.data.open_prepared)."""
    return L.data_folder(DATASET)


def prepared_store_of():
    """The prepared Zarr store inside data_store()'s folder (a per-tile job without a shared filesystem reads its
    rows where it lies, declared.smk)."""
    return str(store_in(data_store()))


def epoch_dir_of(epoch):
    """EPOCH_DIR with the epoch filled in and the run's wildcards left: a rule that writes every checkpoint."""
    return EPOCH_DIR.replace("{epoch}", f"{epoch:03d}")


def run_of(wildcards):
    return Run.of_wildcards(wildcards)


def checkpoint_of(wildcards):
    return str(run_of(wildcards).checkpoint(R, int(wildcards.epoch)))


def train_logs(runs=None):
    return [str(L.train_log(r)) for r in (RUNS if runs is None else runs)]


def checkpoint_outputs(trained_on):
    """The checkpoints a train job of `trained_on` runs writes, named `epoch{E:03d}`."""
    return {f"epoch{e:03d}": L.checkpoint_in(RUN_DIR, e) for e in pcfg.checkpoint_epochs(config, trained_on)}


def epoch_dirs(runs=None):
    """Every checkpoint folder of `runs` (default: every run), each run at its own checkpoint epochs."""
    runs = RUNS if runs is None else runs
    return [str(r.epoch_dir(R, e)) for r in runs for e in pcfg.checkpoint_epochs(config, r.trained_on)]


def at_init_files():
    """The statistics files of diagnostics.at_init: one per model and width with networks left to compute."""
    return [L.at_init(DATASET, arch, w) for arch, w in AT_INIT]


def epoch_files(what, runs=None):
    """`what` (a key of pntk.layout.EPOCH_FILES: diagnostics, regression) of every checkpoint of `runs`."""
    return [L.epoch_file(d, what) for d in epoch_dirs(runs)]


def manifests_of(epoch_dir, trained_on="train"):
    specs = pcfg.store_specs(config, trained_on)
    return [str(L.store(epoch_dir, k, r, c).manifest) for k, r, c in specs]


def store_manifest(wildcards, kind, rows, cols):
    """Manifest of the store that covers (rows, cols) for this run and epoch."""
    on = run_of(wildcards).trained_on
    found = pcfg.find_store(config, kind, rows, cols, on)
    if found is None:
        raise WorkflowError(f"kernels.index_sets.{kind}: no store covers ({rows}, {cols}) for runs trained on {on}")
    return str(L.store(EPOCH_DIR.format(**wildcards), kind, *found).manifest)


def has_full_pntk():
    return pcfg.has_full_pntk(config)


def analysis_in_one_job():
    """regression.jobs: with_diagnostics — one job per checkpoint runs both (when both run at all)."""
    return pcfg.analysis_in_one_job(config)


def all_targets():
    targets = [data_store()]
    targets += train_logs()
    targets += [m for r in RUNS for d in epoch_dirs([r]) for m in manifests_of(d, r.trained_on)]
    targets += figure_targets()
    targets += active_targets()
    targets += [L.table(lay.CLAIMS), L.table(lay.WARNINGS)]  # rule claims (tables.smk)
    targets.append(REPORT)
    return targets


# --- kernels
def tile_flags(wildcards):
    paths = StorePaths(Path(str(KERNEL.stem).format(**wildcards)))
    return [str(paths.flag(i, j)) for i, j in pcfg.tile_grid(config, wildcards.rows, wildcards.cols)]


def finalize_inputs(wildcards):
    """kernel_finalize's inputs: the sentinel and every tile flag. Under --cache first the record of the store
    cache lookup (kernel_lookup, a Snakemake checkpoint): on a hit only that, so neither kernel_init nor any
    kernel_tile of the store is scheduled."""
    base = {
        "sentinel": str(KERNEL.sentinel).format(**wildcards),
        "flags": tile_flags(wildcards),
        "checkpoint": checkpoint_of(wildcards),
        "data": data_store(),
    }
    if REMOTE_TILES:  # finalize does not read the data: not fetched for every store (the flags order it after)
        del base["data"]
    if not CACHE_KERNELS:
        return base
    record = checkpoints.kernel_lookup.get(**wildcards).output.record
    if json.loads(Path(record).read_text())["hit"]:
        return {"record": record, "checkpoint": base["checkpoint"], "data": base["data"]}
    return {"record": record, **base}


# --- diagnostics
def diag_manifests(wildcards):
    return with_stores(
        {
            "entk_dd": store_manifest(wildcards, "entk", "sub-train", "sub-train"),
            "entk_xd": store_manifest(wildcards, "entk", "sub-test", "sub-train"),
            "pntk_dd": store_manifest(wildcards, "pntk", "sub-train", "sub-train"),
            "pntk_xd": store_manifest(wildcards, "pntk", "sub-test", "sub-train"),
        }
    )


def regression_stores(wildcards):
    """The regression's two pNTK stores (train × train, test × train) by manifest (with_stores)."""
    return with_stores(
        {
            "dd": store_manifest(wildcards, "pntk", "train", "train"),
            "xd": store_manifest(wildcards, "pntk", "test", "train"),
        }
    )


# --- figures: the figure table (pntk.report.figure_table) decides which figures exist and what they read
FIGURES_DIR = L.figures
REPORT = L.report


def figure_labels():
    return ftab.labels_for(config)


def heatmap_manifest():
    return ftab.heatmap_manifest(config)


def figure_outputs():
    """PNG/PDF of every figure (PNG in Snakemake's report, captioned by the caption file the figures job
    writes from what it drew), the caption files and the figures.json index the HTML report reads."""
    out, formats = {}, config["figures"]["formats"]
    for n in figure_labels():
        spec = ftab.FIGURES[n]
        caption = os.path.abspath(ftab.caption_file(FIGURES_DIR, n))  # resolved in the working directory
        for path, ext in zip(ftab.figure_files(FIGURES_DIR, n, formats), formats):
            labels = {"figure": spec.title, "name": spec.slug}
            flagged = report(str(path), caption=caption, category=ftab.SECTIONS[spec.section], labels=labels)
            out[f"fig{n}_{ext}"] = flagged if ext == "png" else str(path)
        out[f"fig{n}_caption"] = str(ftab.caption_file(FIGURES_DIR, n))
    out["index"] = L.figures_index
    return out


def figure_targets():
    tables = [L.table(t) for t in lay.TIDY_TABLES]
    timing = list(L.timing(DATASET).values()) if config["timing"]["enabled"] else []
    return list(figure_outputs().values()) + tables + timing


def figure_inputs(wildcards):
    return with_stores(ftab.input_paths(config, data_store()))


def produced_table(name):
    """results/tables/{name}.csv when a rule of this workflow writes it (claims.csv and warnings.csv come
    from the tables step), else nothing: the report then says on its page that the file is missing."""
    path = L.table(name)
    return [path] if any(str(f) == path for r in workflow.rules for f in r.output) else []


def report_inputs(wildcards):
    inp = {"index": L.figures_index, "figures": [str(f) for f in figure_outputs().values()]}
    inp["claims"] = produced_table("claims")
    inp["warnings"] = produced_table("warnings")
    inp["active"] = active_targets()
    return inp


# --- active learning
def active_files(ext):
    """The `ext` (csv, json) files of every active-learning job (strategy × seed) of the config."""
    return [L.active_file(DATASET, s, seed, ext) for s, seed in pcfg.active_runs(config)]


def active_figure_outputs():
    out = {}
    for name in ("accuracy", "time"):
        for ext in config["figures"]["formats"]:
            path = L.active_figure(name, ext)
            cap = f"{workflow.basedir}/workflow/report/active-{name}.rst"
            out[f"{name}_{ext}"] = report(path, caption=cap, category="Active learning") if ext == "png" else path
    return out


def active_targets():
    if not config["active"]["enabled"]:
        return []
    return [L.table(lay.ACTIVE)] + list(active_figure_outputs().values())
