"""Parse `snakemake -n` output for tests: the one parser, strict, so a changed format fails loudly."""
from __future__ import annotations

import re


def job_counts(output: str) -> dict[str, int]:
    """{rule: count} from the 'Job stats' table of a dry run.

    {} only when Snakemake said 'Nothing to be done'; a table that is there but does not parse (or whose
    rows do not add up to its 'total' row) fails the test instead of reading as "no jobs"."""
    if "Job stats:" not in output:
        assert "Nothing to be done" in output, f"neither a Job stats table nor 'Nothing to be done':\n{output[-3000:]}"
        return {}
    counts: dict[str, int] = {}
    total = None
    for line in output.split("Job stats:", 1)[1].splitlines():
        m = re.match(r"^\s*(\w+)\s+(\d+)\s*$", line)
        if not m:
            continue
        if m.group(1) == "total":
            total = int(m.group(2))
            break
        counts[m.group(1)] = int(m.group(2))
    assert counts and total == sum(counts.values()), f"could not parse the Job stats table:\n{output[-3000:]}"
    return counts
