"""Bundled small data sets and synthetic multi-task generators."""

from ._base import load_enb, load_slump
from ._multitask import (
    make_heterogeneous_tasks,
    make_multitask_classification,
    make_multitask_regression,
)
from ._synthetic import borehole, currin, forrester, make_multifidelity

__all__ = [
    "borehole",
    "currin",
    "forrester",
    "load_enb",
    "load_slump",
    "make_heterogeneous_tasks",
    "make_multifidelity",
    "make_multitask_classification",
    "make_multitask_regression",
]
