"""Look-ahead active learning (MLMOC; Mohamadi 2023, Ch. 2 and §3.5):

    lookahead   block (Schur-complement) updates of the linearised predictor when a point is added
    loop        pool-based active learning with MLMOC and baseline strategies, one strategy × seed per job
    figures     accuracy vs labels and acquisition time from the per-run CSVs
"""
