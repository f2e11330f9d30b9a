"""report: results/report.html, one self-contained page: claims, warnings, then every figure with its caption."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.report.html import write_report

sm = snakemake
claims, warnings = (sm.input.get(k) or [None] for k in ("claims", "warnings"))  # [] when no rule writes it
pngs = [p for p in sm.input.active if str(p).endswith(".png")]
path = write_report(sm.output.html, sm.input.index, claims=claims[0], warnings=warnings[0],
                    summary=sm.params.summary, active_pngs=pngs)
log.info("wrote %s", path)
