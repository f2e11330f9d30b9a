# Active learning (Mohamadi 2023, Ch. 2 and §3.5): one job per strategy × seed (active.jobs: per_strategy)
# or one per seed running every strategy (per_seed: a process start, ≈ 5 s here, per strategy saved), then
# two figures. Both write the same files. Path/target functions (active_files,
# active_figure_outputs, active_targets) live in common.smk.

if config["active"]["jobs"] == "per_seed":

    rule active_learning_seed:
        """Every strategy of one seed, one after the other in one process (the same files as per_strategy)."""
        input:
            data=data_store,
        output:
            csv=[L.active_file("{dataset}", s, "{seed}", "csv") for s in config["active"]["strategies"]],
            meta=[L.active_file("{dataset}", s, "{seed}", "json") for s in config["active"]["strategies"]],
        log:
            L.log("active", "{dataset}/s{seed}"),
        priority: PRIORITY["active_seed"]
        conda:
            CONDA_ENV
        threads: device_threads(config["active"]["device"])
        resources:
            **device_resources(config["active"]["device"]),
        params:
            active=config["active"],
            strategies=config["active"]["strategies"],
        script:
            "../../scripts/active_learning.py"

else:

    rule active_learning:
        """Pool = train split, accuracy on the test split; MLMOC look-ahead (pNTK/eNTK/first-logit) or a baseline."""
        input:
            data=data_store,
        output:
            csv=L.active_file("{dataset}", "{strategy}", "{seed}", "csv"),
            meta=L.active_file("{dataset}", "{strategy}", "{seed}", "json"),
        log:
            L.log("active", "{dataset}/{strategy}-s{seed}"),
        wildcard_constraints:
            strategy=r"random|entropy|margin|naive|mlmoc-(pntk|entk|first_logit)(-seq)?",
        conda:
            CONDA_ENV
        threads: device_threads(config["active"]["device"])
        resources:
            **device_resources(config["active"]["device"]),
        params:
            active=config["active"],
        script:
            "../../scripts/active_learning.py"


rule active_figures:
    """Test accuracy vs labels (mean, 95% CI over seeds) and acquisition wall time per cycle."""
    input:
        csvs=active_files("csv"),
    output:
        **active_figure_outputs(),
        table=L.table(lay.ACTIVE),
    log:
        L.log("active_figures"),
    priority: PRIORITY["active_figures"]
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    params:
        out_dir=lambda wc, output: os.path.dirname(output[1]),  # output[0] is the table
        formats=config["figures"]["formats"],
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/active_figures.py"
