"""Every gallery example runs and draws a figure, so the gallery cannot rot."""

import runpy
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_and_draws(path, monkeypatch):
    pytest.importorskip("modAL")
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)
    plt.close("all")
    runpy.run_path(str(path), run_name="__main__")
    figures = [plt.figure(n) for n in plt.get_fignums()]
    assert figures and all(f.axes for f in figures)
    plt.close("all")


def test_there_are_examples_for_every_topic():
    names = {p.stem for p in EXAMPLES}
    assert {
        "plot_gp_bands",
        "plot_calibration",
        "plot_active_learning",
        "plot_pruning_overlap",
        "plot_bayesagg_weights",
    } <= names
