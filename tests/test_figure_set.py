"""The report captions in workflow/report/ are generated from pntk.figure_set and must not drift."""
from pathlib import Path

import pytest

from pntk.paper import figure_set

REPORT = Path(__file__).resolve().parents[1] / "workflow" / "report"


@pytest.mark.parametrize("n", sorted(figure_set.FIGURES))
def test_caption_file_is_current(n):
    text = (REPORT / f"fig{n:02d}.rst").read_text()
    assert text == figure_set.caption_rst(n), "run: python -m pntk.figure_set workflow/report"


def test_every_figure_has_a_caption():
    for n in figure_set.FIGURES:
        assert len(figure_set.caption(n)) > 40, n


@pytest.mark.parametrize("name", ["accuracy", "time"])
def test_active_caption_file_is_current(name):
    assert (REPORT / f"active-{name}.rst").read_text() == figure_set.active_caption_rst(name)
