"""Training a run: the SGD loop with checkpoints and exact resume, the optimizer, and "did this run learn".

    loop      train_run, TrainConfig, load_checkpoint (rebuilds the model from its spec), evaluate
    sgd       SGD: torch's single-tensor SGD steps without the torch.optim import
    learned   did_learn / learning_verdict: the one definition of a run that learned (torch-free)
    job       train_job: the train rule's work on its Snakemake job

`learned` is imported with the face (tables and verdicts read it without torch); the rest on first use.
"""
from .._lazy import lazy_members
from .learned import chance_accuracy, did_learn, learned_threshold, learning_verdict

# A literal dict: pntk.code_closure reads it to know which modules a job that imports the face may run.
_MEMBERS = {"LOG_FIELDS": "loop", "DivergedError": "loop", "TrainConfig": "loop", "checkpoint_path": "loop",
            "epoch_order": "loop", "evaluate": "loop", "init_digest": "loop", "load_checkpoint": "loop",
            "loss_fn": "loop", "progress_line": "loop", "train_run": "loop", "SGD": "sgd", "train_job": "job"}
__getattr__ = lazy_members(__name__, _MEMBERS)

__all__ = ["LOG_FIELDS", "SGD", "DivergedError", "TrainConfig", "chance_accuracy", "checkpoint_path", "did_learn",
           "epoch_order", "evaluate", "init_digest", "learned_threshold", "learning_verdict", "load_checkpoint",
           "loss_fn", "progress_line", "train_job", "train_run"]
