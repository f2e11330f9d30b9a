"""What the workflow reports from its per-checkpoint results: tidy tables, verdicts, the claims, the figures
(the paper's and active learning's, one figure table) and the HTML report. Modules are imported where
used (matplotlib and scipy are slow to import and most jobs need one of them only):

    tables        tidy CSVs from the per-checkpoint JSONs and the train logs, each row with its run's `learned`
    verdicts      did each run learn (pntk.train.learned), and warnings.csv (runs, solvers, active learning)
    run_verdicts  which runs learned, read from the tables' learned column
    claims        claims.csv: a verdict per claim of the paper and thesis; claim_rows (one row and its
                  helpers), claims_kernel, claims_rate, claims_regression, claims_active (the families),
                  claim_sources (what each cites), decide and claim_tests (the statistics behind verdicts)
    figure_table  the one table of figures (number, slug, section, inputs, statistic, y-label; the
                  active-learning figures' captions too); no plotting
    figure_set    the figures job: draw each figure, write its caption from what it drew (figures.json)
    figures       plot helpers and Figs 2–12; figures_fits (13, 14), figures_timing (1), figures_data (15, 16),
                  figures_paper (the paper's layout), figures_active (accuracy and time of active learning)
    html          results/report.html: claims, warnings, every figure with its caption
"""
from .._lazy import lazy_members

_MEMBERS = {"ClaimInputs": "claim_rows", "absent_tables": "claims", "claims_table": "claims",
            "format_claims": "claims", "render_many": "figure_set", "write_captions": "figure_set",
            "render_all": "figures_active", "write_report": "html", "warnings_table": "verdicts"}
__getattr__ = lazy_members(__name__, _MEMBERS)

__all__ = sorted(_MEMBERS)
