"""Kernel regression with the linearised network (paper eq. for f_lin), dense and out-of-core.

    linearized_predict(k_dd, k_xd, f0_d, f0_x, y_d, ridge=, t=, solver=)   predictions on X (and D)
    solvers: cholesky_solve, eigh_solve, cg_solve on a ZarrKernelOperator (a store read panel by panel)
"""
from .linearized import Solver, accuracy, linearized_predict, regression_summary
from .solvers import ZarrKernelOperator, cg_solve, cholesky_solve, eigh_solve, finite_time_weights

__all__ = ["Solver", "ZarrKernelOperator", "accuracy", "cg_solve", "cholesky_solve", "eigh_solve",
           "finite_time_weights", "linearized_predict", "regression_summary"]
