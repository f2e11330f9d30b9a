# pntk workflow: data → training → tiled kernels → diagnostics/regression → tables, figures, report.
from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless --configfile names another: Snakemake would otherwise merge the two,
# and keys of the default (e.g. `active`) would leak into a paper config.
if not config:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/declared.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/kernels.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/timing.smk"
include: "workflow/rules/infinite_width.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/regression.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/active.smk"


rule all:
    default_target: True
    input:
        all_targets(),
