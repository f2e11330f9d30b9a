# Every figure (PNG + PDF) in one job from the tidy tables; captions in workflow/report/.


rule figures:
    """All figures of the paper reproduction, PNG and PDF, with captions for the HTML report."""
    input:
        unpack(figure_inputs),
    output:
        **figure_outputs(),
    params:
        numbers=figure_numbers(),
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    log:
        f"{R}/logs/figures.log",
    script:
        "../../scripts/figures.py"
