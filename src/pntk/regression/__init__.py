"""Kernel regression with the linearised network (paper eq. for f_lin), dense and out-of-core.

    linearized_predict(k_dd, k_xd, f0_d, f0_x, y_d, options=SolverOptions(...), t=)   predictions on X (and D)
    options: SolverOptions, how to solve (one frozen object; from_config reads a config's `regression:`)
    solvers: cholesky_solve, eigh_solve, cg_solve (Jacobi or Nyström-preconditioned) with escalation
    operator: ZarrKernelOperator, products with a kernel store read tile by tile on all cores
    preconditioners: jacobi, nystrom (randomized Nyström, Frangella–Tropp–Udell 2021)
    memory: what a solve holds (read by `pntk plan`); job: the regression rule's work on one checkpoint
"""
from .job import epoch_regression, model_outputs, regression_job
from .linearized import Solver, accuracy, choose_solver, linearized_predict, regression_summary
from .options import SolverOptions
from .solvers import NotConvergedError, ZarrKernelOperator, cg_solve, cholesky_solve, eigh_solve, finite_time_weights

__all__ = ["NotConvergedError", "Solver", "ZarrKernelOperator", "accuracy", "cg_solve", "choose_solver",
           "cholesky_solve", "eigh_solve", "epoch_regression", "finite_time_weights", "linearized_predict",
           "model_outputs", "regression_job", "regression_summary", "SolverOptions"]
