"""Loaders of the small real data sets shipped inside the package."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

from .._docstrings import expand_doc
from ._validation import check_params

_DESCR = {
    "enb": (
        "Energy efficiency (UCI #242, Tsanas & Xifara 2012; CC BY 4.0): 768 simulated "
        "buildings (12 shapes x 4 orientations x 16 glazing settings), 8 features, two "
        "targets (heating and cooling load, kWh/m^2). Near-duplicate buildings share "
        "features, so random splits are optimistic."
    ),
    "slump": (
        "Concrete slump test (UCI #182, Yeh 2007; CC BY 4.0): 103 concrete mixes, 7 "
        "ingredient amounts (kg/m^3), three targets (slump and flow in cm, 28-day "
        "compressive strength in MPa)."
    ),
}


def _load(name: str, return_X_y: bool, as_frame: bool):
    check_params(f"load_{name}", return_X_y=return_X_y, as_frame=as_frame)
    text = resources.files(__package__).joinpath("data", f"{name}.csv").read_text()
    rows = list(csv.reader(text.splitlines()))
    header, values = rows[0], np.array(rows[1:], dtype=np.float64)
    is_target = np.array([h.startswith("y_") for h in header])
    feature_names = [h for h, t in zip(header, is_target) if not t]
    target_names = [h for h, t in zip(header, is_target) if t]
    X, y = values[:, ~is_target], values[:, is_target]
    frame = None
    if as_frame:
        import pandas as pd

        frame = pd.DataFrame(values, columns=header)
        X, y = frame[feature_names], frame[target_names]
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        frame=frame,
        feature_names=feature_names,
        target_names=target_names,
        DESCR=_DESCR[name],
    )


def _loader(name: str, summary: str, example: str):
    """The public ``load_<name>`` of the shipped ``data/<name>.csv``, with its docstring."""

    def load(*, return_X_y=False, as_frame=False):
        return _load(name, return_X_y, as_frame)

    load.__name__ = load.__qualname__ = f"load_{name}"
    load.__doc__ = expand_doc(
        f"{summary}\n\nParameters\n----------\n%(loader_params)s\n\n"
        f"Returns\n-------\n%(loader_returns)s\n\nExamples\n--------\n{example}\n"
    )
    return load


load_enb = _loader(
    "enb",
    "Load the energy-efficiency data: 768 buildings, 8 features, 2 tasks.",
    """>>> from sk_mtbnn.datasets import load_enb
>>> X, y = load_enb(return_X_y=True)
>>> X.shape, y.shape
((768, 8), (768, 2))""",
)
load_slump = _loader(
    "slump",
    "Load the concrete slump data: 103 mixes, 7 features, 3 tasks.",
    """>>> from sk_mtbnn.datasets import load_slump
>>> data = load_slump()
>>> data.target_names
['y_slump_cm', 'y_flow_cm', 'y_compressive_strength_MPa']""",
)
