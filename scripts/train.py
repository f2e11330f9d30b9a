"""train / train_on_D: one run (arch, width, seed) with checkpoints at its checkpoint epochs."""
from pntk.scriptutil import setup

log = setup(snakemake)  # noqa: F821

from pntk.train_job import train_job  # noqa: E402

train_job(snakemake)  # noqa: F821
