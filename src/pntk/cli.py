"""`pntk` command line: inspect and verify kernel stores, pack and import result archives.

    pntk ls [RESULTS] [--verify] [--json]      every data store, run, checkpoint and kernel store, with status
    pntk info STORE [STORE ...] [--json]       shape, kind, tiles written / total, finalized, provenance
    pntk verify STORE|FOLDER ... [--json]      recompute every tile checksum (exit 1 if any store is bad)
    pntk archive pack --config C -o FILE.zip [--results DIR] [--run SELECTOR ...] [--no-data]
    pntk archive import FILE.zip [--config C] [--results DIR] [--overwrite]
    pntk archive publish --config C -o DIR|s3://bucket/prefix [--results DIR] [--run SELECTOR ...] [--no-data]
    pntk archive import DIR|s3://…|https://… [--config C] [--results DIR] [--overwrite]
    pntk synth cifar10 --out DIR [--seed S] [--train N --test M] [--overwrite]   synthetic CIFAR-10 files
    pntk check CONFIG [CONFIG ...]               validate configs (YAML errors with file and line); list their runs
    pntk plan --config C [--device cpu|a100|h100|...] [--calibrate] [--cores N] [--json] [--compare LOG ...]
    pntk claims [CLAIMS.csv] [--warnings W.csv]  the paper's claims with their verdicts, then the warnings

STORE is a kernel store `….zarr`, its `….manifest.json` or `….init.json`, or the common stem; a local
path or a URL: `s3://bucket/…` (endpoint and credentials from the AWS environment) or `https://host/…`
(read only). `pntk ls` and `pntk verify` also take an s3:// prefix and list the stores under it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from ._version import __version__
from .inventory import format_summary, store_summary
from .layout import CLAIMS, Layout
from .store.paths import StorePaths
from .store.remote import RemoteStoreError, is_url


def cmd_info(args) -> int:
    summaries, texts, rc = [], [], 0
    for target in args.stores:
        found = _folder_stores(target)
        if found is not None:
            # A folder (e.g. results/): not a store. Say so, and what it holds.
            p = target if is_url(target) else Path(target)
            rc = rc or (0 if found else 2)
            texts.append(f"{p}: a folder, not a kernel store; it holds {len(found)} kernel stores"
                         + (f" (`pntk ls {p}` lists them with their status):\n" + "\n".join(
                             f"  {_relative(s, p)}" for s in found) if found else ""))
            summaries.append({"folder": str(p), "stores": [str(s) for s in found]})
            continue
        summary = store_summary(target)
        summaries.append(summary)
        texts.append(format_summary(summary))
    if args.json:
        print(json.dumps(summaries[0] if len(summaries) == 1 else summaries, indent=2))
    else:
        print("\n\n".join(texts))
    return rc


def _folder_stores(target: str) -> list | None:
    """None when `target` is a store (any of its files) or names nothing; for a folder or s3:// prefix
    that is not a store (e.g. results/), the kernel stores under it."""
    from .inventory import kernel_stores_under

    if is_url(target):
        from .store import remote

        p = remote.as_path(target)
        p.check_reachable(write=False)  # a missing bucket or unreachable endpoint, named
        if (p / "zarr.json").is_file() or (StorePaths.of(p).store / "zarr.json").is_file() or not p.is_dir():
            return None
        return kernel_stores_under(p)
    p = Path(target)
    if p.is_dir() and not (p / "zarr.json").is_file() and not (StorePaths.of(p).store / "zarr.json").is_file():
        return kernel_stores_under(p)
    return None


def _relative(store, folder) -> str:
    return store.relative_to(folder) if not is_url(store) else str(store)[len(str(folder).rstrip("/")) + 1:]


def _stores_of(targets: list[str]) -> list[str]:
    """Each target as given, or, for a folder that is not a store (e.g. results/), every kernel store under it."""
    out = []
    for target in targets:
        found = _folder_stores(target)
        if found is not None:
            out += [str(s) for s in found] or [target]  # none: reported as "no kernel store"
        else:
            out.append(target)
    return out


def cmd_verify(args) -> int:
    from .inventory import problems
    from .store import tiles

    results, ok = [], True
    for s in _stores_of(args.stores):
        zpath = StorePaths.of(s).store
        if not (zpath / "zarr.json").is_file():
            res = {"store": str(zpath), "ok": False, "error": "no kernel store there"}
        else:
            res = tiles.verify(zpath)
        results.append(res)
        ok &= bool(res["ok"])
        if args.json:
            continue
        if res["ok"]:
            print(f"OK      {res['store']} ({res['n_tiles']} tiles)")
            continue
        print(f"FAILED  {res['store']}\n" + "\n".join(f"        {w}" for w in problems(res)))
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if ok else 1


def cmd_ls(args) -> int:
    from .inventory import format_inventory, inventory, remote_inventory

    if is_url(args.results):  # the kernel stores under an s3:// prefix
        rows = remote_inventory(args.results, verify=args.verify)
        print(json.dumps(rows, indent=2, default=str) if args.json else format_inventory(rows, args.results))
        return 1 if args.verify and not all(r["ok"] for r in rows) else 0
    results = Path(args.results)
    if not results.is_dir():
        raise FileNotFoundError(f"{results}: no such folder (pntk ls lists a results folder)")
    rows = inventory(results, verify=args.verify)
    print(json.dumps(rows, indent=2) if args.json else format_inventory(rows, results))
    return 1 if args.verify and not all(r["ok"] for r in rows) else 0


def _config(path: str, check_files: bool = True) -> dict:
    from . import config as pcfg

    if not Path(path).is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    return pcfg.load_config(path, check_files=check_files)


def _report_packed(man: dict, verb: str, where: str) -> int:
    """What pack and publish print: how much went where, then the stores, then what was not computed."""
    size = sum(f["size"] for f in man["files"].values())
    print(f"{verb} {len(man['stores'])} kernel stores of {len(man['runs'])} runs ({len(man['files'])} files, "
          f"{size / 2**20:.1f} MiB{', with' if man['data']['included'] else ', without'} the data store) {where}")
    for s in man["stores"]:
        print(f"  {s['key']}")
    if man["not_computed"]:
        print(f"skipped {len(man['not_computed'])} selected stores that are not computed at all")
    return 0


def cmd_pack(args) -> int:
    from . import archive

    cfg = _config(args.config)
    man = archive.pack(cfg, Path(args.results or cfg["results"]), args.output, selectors=args.run,
                       with_data=not args.no_data)
    return _report_packed(man, "packed", f"into {args.output}")


def cmd_publish(args) -> int:
    from . import archive

    cfg = _config(args.config)
    man = archive.publish(cfg, Path(args.results or cfg["results"]), args.output, selectors=args.run,
                          with_data=not args.no_data, overwrite=args.overwrite)
    return _report_packed(man, "published", f"to {args.output} (index: {str(args.output).rstrip('/')}/"
                                             f"{archive.MANIFEST})")


def cmd_import(args) -> int:
    from . import archive

    cfg = _config(args.config)
    results = Path(args.results or cfg["results"])
    if archive.is_published(args.archive):  # a folder or URL: a published archive
        res = archive.import_published(args.archive, results, cfg, overwrite=args.overwrite)
        fetched = (f" ({res['fetched']} files, {res['bytes'] / 2**20:.1f} MiB fetched; {res['staged']} staged "
                   f"before, {res['linked']} taken from {results})")
    else:
        res, fetched = archive.import_archive(args.archive, results, cfg, overwrite=args.overwrite), ""
    print(f"imported {len(res['stores'])} kernel stores of {len(res['runs'])} runs into {results}: "
          f"{res['written']} files written, {res['unchanged']} already present, data store {res['data']}{fetched}")
    for key in res["stores"]:
        print(f"  {key}")
    return 0


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def cmd_synth(args) -> int:
    from .data.synthetic import write_synthetic_cifar10

    base = write_synthetic_cifar10(args.out, seed=args.seed, n_train=args.train, n_test=args.test,
                                   overwrite=args.overwrite)
    print(f"wrote SYNTHETIC CIFAR-10 stand-in ({args.train} train, {args.test} test images, seed {args.seed}) "
          f"to {base}; use data.root: {args.out} and data.verify_md5: false (see {base / 'README.txt'})")
    return 0


def _device_name(text: str) -> str:
    from .plan import check_device_name

    try:
        return check_device_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_plan(args) -> int:
    from . import config as pcfg
    from .plan import device_profile, format_plan, plan_workflow

    cfg = _config(args.config, check_files=False)  # planning needs no data files (as `snakemake -n`)
    device = device_profile(args.device, threads=args.cores, calibrate=args.calibrate,
                            cpus_per_gpu=cfg["resources"]["cpus_per_gpu"])
    plan = plan_workflow(cfg, device, cores=args.cores, config_name=args.config)
    out, text = plan.as_dict(), format_plan(plan)
    for w in pcfg.config_warnings(cfg):
        text += f"\nWARNING: {w}"
    if args.compare:  # a finished run's Snakemake log: planned vs measured time per rule
        from .plan import compare, format_comparison, pick_log

        log, why = pick_log([Path(p) for p in args.compare])
        out["comparison"] = compare(plan, log[1])
        text += f"\n\nagainst {log[0]}{why}:\n" + format_comparison(out["comparison"])
    print(json.dumps(out, indent=1) if args.json else text)
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def cmd_check(args) -> int:
    from . import config as pcfg
    from .models import entry_label

    for path in args.configs:
        cfg = _config(path)
        if args.results:  # for scripts (the Makefile): the results folder, nothing else
            print(cfg["results"])
            continue
        runs, on_d = pcfg.runs(cfg), pcfg.runs(cfg, "D")
        n_train, n_test = pcfg.split_sizes(cfg)
        where = f"{cfg['results']}/runs/{cfg['data']['name']}/"
        print(f"{path}: valid. {cfg['data']['name']} ({n_train} train, {n_test} test); {_count(len(runs), 'run')} × "
              f"{_count(len(cfg['train']['checkpoint_epochs']), 'checkpoint')} into {where}"
              + (f", and the same {_count(len(on_d), 'network')} trained on D (Figs 2–8; folders …-onD) × "
                 f"{_count(len(pcfg.checkpoint_epochs(cfg, 'D')), 'checkpoint')}" if on_d else "") + ":")
        for m in cfg["models"]:
            names = ", ".join(f"{m['name']}-w{w}-s{s}" for w in m["widths"] for s in cfg["seeds"])
            print(f"  {entry_label(m)}: {names}")
        for w in pcfg.config_warnings(cfg):
            print(f"WARNING: {w}")
    return 0


def cmd_claims(args) -> int:
    import pandas as pd

    from .report.claims import COLUMNS, format_claims
    from .report.verdicts import WARNING_COLUMNS

    path = Path(args.claims)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no claims table there (the workflow's `claims` rule writes it)")
    df = pd.read_csv(path, keep_default_na=False, dtype=str)
    if list(df.columns) != COLUMNS:
        print(f"pntk claims: error: {path}: columns {list(df.columns)}, expected {COLUMNS}", file=sys.stderr)
        return 2
    print(format_claims(df, width=shutil.get_terminal_size((110, 24)).columns))
    warnings = Path(args.warnings) if args.warnings else path.with_name("warnings.csv")
    if warnings.is_file():
        w = pd.read_csv(warnings, keep_default_na=False, dtype=str)
        if list(w.columns) != WARNING_COLUMNS:
            print(f"pntk claims: error: {warnings}: columns {list(w.columns)}, expected {WARNING_COLUMNS}",
                  file=sys.stderr)
            return 2
        print(f"\n{len(w)} warning(s) in {warnings}" + (":" if len(w) else ""))
        for r in w.itertuples():
            print(f"  [{r.source}] {r.run}: {r.message}")
    return 0


def _archive_selection(q: argparse.ArgumentParser) -> None:
    """The options pack and publish share: the config, the results folder, which stores, with or without data."""
    q.add_argument("--config", required=True, help="workflow config (YAML) the results were computed with")
    q.add_argument("--results", help="results folder (default: the config's `results`)")
    q.add_argument("--run", action="append", default=[], metavar="SELECTOR",
                   help="glob on {dataset}/{arch}-w{W}-s{S}/epoch{EEE}/{kind}-{rows}-{cols}, matching whole "
                        "components (e.g. fcn-w64-s0, epoch003, 'pntk-*'); repeatable; default: every "
                        "finished store")
    q.add_argument("--no-data", action="store_true",
                   help="leave out the prepared data store (only its fingerprint is kept); the importer then "
                        "needs results/data/{dataset}/{dataset}.zarr with the same fingerprint")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pntk", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"pntk {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("ls", help="table of the data stores, runs, checkpoints and kernel stores of a results folder")
    q.add_argument("results", nargs="?", default="results", help="results folder (default: results)")
    q.add_argument("--verify", action="store_true",
                   help="recompute every tile checksum (slow; exit 1 if any store fails); default: a kernel store "
                        "is 'verified' when its manifest exists and its tile flags agree with it")
    q.add_argument("--json", action="store_true", help="print the rows as JSON")
    q.set_defaults(func=cmd_ls)
    q = sub.add_parser("info", help="shape, kind, completeness and provenance of kernel stores")
    q.add_argument("stores", nargs="+", metavar="STORE", help="a store (any of its files) or a folder of stores")
    q.add_argument("--json", action="store_true", help="print the summary as JSON")
    q.set_defaults(func=cmd_info)
    q = sub.add_parser("verify", help="recompute tile checksums against the manifest and tile flags")
    q.add_argument("stores", nargs="+", metavar="STORE",
                   help="a store (any of its files) or a folder: every store under it")
    q.add_argument("--json", action="store_true", help="print the verification records as JSON")
    q.set_defaults(func=cmd_verify)
    arch = sub.add_parser("archive", help="pack or publish finished results / import them into another checkout")
    asub = arch.add_subparsers(dest="archive_command", required=True)
    q = asub.add_parser("pack", help="zip finalized kernel stores with the checkpoints and data they need")
    _archive_selection(q)
    q.add_argument("-o", "--output", required=True, metavar="FILE.zip")
    q.set_defaults(func=cmd_pack)
    q = asub.add_parser("publish", help="write finalized kernel stores with the checkpoints and data they need "
                        "as a browsable folder or s3:// prefix (pntk ls and pntk archive import read it)")
    _archive_selection(q)
    q.add_argument("--overwrite", action="store_true", help="replace a published archive already there")
    q.add_argument("-o", "--output", required=True, metavar="DIR|s3://bucket/prefix")
    q.set_defaults(func=cmd_publish)
    q = asub.add_parser("import", help="check an archive (a zip, or a published folder or URL) against this "
                        "checkout's config, then extract it")
    q.add_argument("archive", metavar="FILE.zip|DIR|URL",
                   help="a zip from pack, or a published archive: a folder, s3://… or http(s)://…")
    q.add_argument("--config", default="config.yaml", help="this checkout's workflow config (default: config.yaml)")
    q.add_argument("--results", help="results folder (default: the config's `results`)")
    q.add_argument("--overwrite", action="store_true", help="replace existing files whose contents differ")
    q.set_defaults(func=cmd_import)
    q = sub.add_parser("synth", help="write synthetic data sets in the official file formats")
    q.add_argument("dataset", choices=["cifar10"])
    q.add_argument("--out", required=True, metavar="DIR", help="folder to use as data.root")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--train", type=_positive_int, default=50000, metavar="N", help="train images (default 50000)")
    q.add_argument("--test", type=_positive_int, default=10000, metavar="M", help="test images (default 10000)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing synthetic copy")
    q.set_defaults(func=cmd_synth)
    q = sub.add_parser("plan", help="jobs, FLOPs, bytes, peak memory and time per rule of a config, before running")
    q.add_argument("--config", required=True, help="workflow config (YAML)")
    q.add_argument("--device", type=_device_name, default="cpu",
                   help="cpu (this machine, calibrated once and cached) or a GPU: v100, a100 (= a100-40gb), "
                        "a100-80gb, h100, h200, l40s")
    q.add_argument("--calibrate", action="store_true", help="measure this CPU again (a few seconds)")
    q.add_argument("--cores", type=_positive_int, default=None, help="Snakemake --cores (default: all of them)")
    q.add_argument("--json", action="store_true", help="print the plan as JSON")
    q.add_argument("--compare", nargs="+", metavar="LOG", help="a finished run's .snakemake/log/*.snakemake.log: "
                   "planned vs measured time per rule (given several, e.g. a glob, the newest log with finished jobs)")
    q.set_defaults(func=cmd_plan)
    q = sub.add_parser("check", help="validate configs as the workflow does (YAML errors with file and line) and "
                       "list the runs they define")
    q.add_argument("configs", nargs="+", metavar="CONFIG", help="workflow config (YAML)")
    q.add_argument("--results", action="store_true", help="print only each config's results folder")
    q.set_defaults(func=cmd_check)
    q = sub.add_parser("claims", help="print the claims table (id, verdict, numbers) and the warnings")
    claims_csv = Layout("results").table(CLAIMS)
    q.add_argument("claims", nargs="?", default=claims_csv, metavar="CLAIMS.csv", help=f"default: {claims_csv}")
    q.add_argument("--warnings", metavar="W.csv", help="default: warnings.csv next to CLAIMS.csv")
    q.set_defaults(func=cmd_claims)
    return p


def main(argv: list[str] | None = None) -> int:
    from .archive import ArchiveError
    from .config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ArchiveError, ConfigError, FileNotFoundError, FileExistsError, RemoteStoreError) as err:
        print(f"pntk {args.command}: error: {err}", file=sys.stderr)
        return 2 if not isinstance(err, ArchiveError) else 1
    except BrokenPipeError:
        # The reader left (`pntk ls | head`): stop quietly, like a Unix tool killed by SIGPIPE. stdout goes
        # to /dev/null so that the interpreter's last flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13


if __name__ == "__main__":
    sys.exit(main())
