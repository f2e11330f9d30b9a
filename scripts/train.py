"""train / train_on_D: one run (arch, width, seed) with checkpoints at its checkpoint epochs."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.train import train_job

train_job(snakemake)
