"""Every claim quotes its source verbatim: each quote of pntk.report.claim_sources is found in the reference text."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pntk.report.claim_sources import ORIGINS, PROJECT, REFERENCE_FILES, SOURCES, source_of

REFERENCES = Path(__file__).resolve().parents[2] / "shared" / "references"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.skipif(not REFERENCES.is_dir(), reason=f"reference texts not present at {REFERENCES}")
@pytest.mark.parametrize("family", sorted(k for k, s in SOURCES.items() if s.origin != PROJECT))
def test_quote_is_verbatim(family):
    src = SOURCES[family]
    text = _norm((REFERENCES / REFERENCE_FILES[src.origin]).read_text())
    assert _norm(src.quote) in text, f"{family}: quote not found in {REFERENCE_FILES[src.origin]}: {src.quote!r}"


def test_every_source_is_complete():
    for family, src in SOURCES.items():
        assert src.origin in ORIGINS, family
        assert src.where and src.quote, family
    assert source_of("fig3-norm-width:fcn") is SOURCES["fig3-norm-width"]
    with pytest.raises(KeyError, match="no source registered"):
        source_of("nonsense:fcn")
