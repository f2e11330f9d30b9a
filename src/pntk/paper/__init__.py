"""The paper's analyses (Mohamadi & Sutherland 2023): statistics, per-checkpoint analysis, timing, the
infinite-width reference, tidy tables and the figure set. Modules are imported where used (matplotlib is
slow to import and most jobs need one of them only):

    diagnostics   eNTK vs pNTK statistics of one kernel pair (Figs 2–8), tidy rows, the width-rate fit
    analysis      what a diagnostics / regression job computes for one run and checkpoint
    timing        seconds per input pair of eNTK and pNTK (Fig 1)
    infinite      analytic NTK of a ReLU FCN vs finite-width kernels (Fig 14)
    tables        tidy CSVs from the per-checkpoint JSONs and the train logs, each row with its run's `learned`
    verdicts      did each run learn (one definition), and warnings.csv (runs, solvers, active learning)
    claims        claims.csv: a verdict per claim of the paper and thesis (claims_rate, claims_active: the
                  exponent and active-learning claims; claim_tests: the statistics behind the verdicts)
    figures       plot functions;   figure_set   the table of figures (number, slug, caption, inputs)
"""
