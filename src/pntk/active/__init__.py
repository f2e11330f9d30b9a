"""Look-ahead active learning (MLMOC; Mohamadi 2023, Ch. 2 and §3.5):

    settings    ALConfig, strategy names, the tidy CSV's columns (no torch: the report's figures read them)
    lookahead   block (Schur-complement) updates of the linearised predictor when a point is added
    loop        pool-based active learning with MLMOC and baseline strategies, one strategy × seed per job
    naive       look-ahead by SGD retraining per candidate;  training: fit / retrain f_L (warm or cold)
    blockcheck  the block updates' acquisitions against direct solves

Its figures are drawn by the report (pntk.report.figures_active), which imports this package, not the
other way round. `settings` is imported with the face; the torch modules on first use.
"""
from .._lazy import lazy_members
from .settings import BASELINES, COLUMNS, ALConfig, parse_strategy

__getattr__ = lazy_members(__name__, {"run_active_learning": "loop", "run_from_store": "loop",
                                      "write_results": "loop", "LookAhead": "lookahead"})

__all__ = ["BASELINES", "COLUMNS", "ALConfig", "LookAhead", "parse_strategy", "run_active_learning",
           "run_from_store", "write_results"]
