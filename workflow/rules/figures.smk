# Every figure (PNG + PDF) in one job from the tidy tables, each with the caption written from what it drew;
# then the HTML report that opens on the results. Which figures exist and what they read: the figure table
# (pntk.report.figure_table), asked by the functions in common.smk.


rule figures:
    """All figures of the paper reproduction, PNG and PDF, their captions and the figures.json index."""
    input:
        unpack(figure_inputs),
    output:
        **figure_outputs(),
    log:
        L.log("figures"),
    priority: PRIORITY["figures"]
    conda:
        CONDA_ENV
    threads: min(HEAVY_CPU, 4)  # figures drawn side by side (≈ 2 s each, 16 of them)
    resources:
        **device_resources(),
    params:
        labels=figure_labels(),
        out_dir=lambda wc, output: os.path.dirname(output.index),
        subsets={k: config["data"][k] for k in ("subset_train", "subset_test", "seed")},
        formats=config["figures"]["formats"],
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/figures.py"


rule report:
    """results/report.html: one self-contained page (PNG embedded, no network) that opens on the claims and
    the run's warnings, then every figure with its caption, grouped by the paper's sections.
    """
    input:
        unpack(report_inputs),
    output:
        html=REPORT,
    log:
        L.log("report"),
    priority: PRIORITY["figures"]
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    params:
        summary={
            "dataset": DATASET,
            "models": config["models"],
            "seeds": config["seeds"],
            "epochs": EPOCHS,
            "epochs_on_D": pcfg.checkpoint_epochs(config, "D") if "D" in REGIMES else [],
        },
    script:
        "../../scripts/report.py"
