"""Shared helpers of the persistence tests (test_persistence*.py): data, fits, deep equality.

It holds no tests; the test modules import it by name (pytest puts tests/unit on sys.path).
"""

import hashlib
import json
import warnings
import zipfile

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone

import sk_mtbnn
from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.aggregators import Aggregator

S = SparseMultiTaskBNNRegressor
NETWORK_ATTRIBUTES = {"net_", "_inference_module", "_inference_stamp", "history_"}


def _data():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, (40, 2))
    y = np.c_[np.sin(X[:, 0]), X[:, 1] ** 2] + 0.1 * rng.randn(40, 2)
    y[::4, 1] = np.nan
    return X, y


X, Y = _data()
# The plain network-regime fit, which both test modules save and load.
NETWORK = S((8,), regime="network", max_epochs=5, random_state=0)


def _fit(estimator, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clone(estimator).fit(X, y, **fit_params)


def _round_trip(estimator, tmp_path, name="model.skmtbnn"):
    path = tmp_path / name
    sk_mtbnn.save(estimator, path)
    return sk_mtbnn.load(path)


def assert_same_value(a, b, where="value"):
    """Deep equality of fitted attributes (arrays exactly, NaN equal to NaN)."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, z) in enumerate(zip(a, b)):
            assert_same_value(x, z, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same_value(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype, where
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=where)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(
            a, b, check_exact=True, check_index_type=True, check_column_type=True, obj=where
        )
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True, check_index_type=True, obj=where)
    elif isinstance(a, np.random.RandomState):
        assert_same_value(a.get_state(), b.get_state(), where)
    elif hasattr(a, "get_params"):
        assert_same_params(a, b)
    elif isinstance(a, Aggregator):
        assert_same_value(vars(a), vars(b), where)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_params(a, b):
    assert type(a) is type(b)
    pa, pb = a.get_params(deep=False), b.get_params(deep=False)
    assert list(pa) == list(pb)
    for k in pa:
        assert_same_value(pa[k], pb[k], f"{type(a).__name__}.{k}")


def assert_same_fitted_state(a, b):
    """Every attribute of the last fit is restored (networks are compared by predictions)."""
    names = set(getattr(a, "_fit_state_names", ()))
    assert names == set(getattr(b, "_fit_state_names", ()))
    for name in sorted(names - NETWORK_ATTRIBUTES):
        va, vb = getattr(a, name), getattr(b, name)
        if hasattr(va, "_fit_state_names") or hasattr(va, "net_"):
            assert_same_fitted_state(va, vb)
        elif isinstance(va, list) and va and hasattr(va[0], "net_"):
            for ma, mb in zip(va, vb):
                assert_same_fitted_state(ma, mb)
        else:
            assert_same_value(va, vb, name)
    if "net_" in vars(a):
        assert list(a.history_) == list(b.history_)
        assert (b.history_ is b.net_.history) == (a.history_ is a.net_.history)
        for (ka, ta), (kb, tb) in zip(
            a.net_.module_.state_dict().items(), b.net_.module_.state_dict().items()
        ):
            assert ka == kb
            torch.testing.assert_close(ta, tb, rtol=0, atol=0)


def _members(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist()}


def _write(path, members) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _rewrite(path, metadata=None, **changes):
    """Rewrite members of a saved file with matching checksums (a deliberate tampering).

    ``metadata`` edits the parsed JSON in place; a member given as None is removed.
    """
    members = _members(path)
    meta = json.loads(members["metadata.json"])
    if metadata is not None:
        metadata(meta)
    for name, data in changes.items():
        if data is None:
            del members[name]
        else:
            members[name] = data
            meta["sha256"][name] = hashlib.sha256(data).hexdigest()
    members["metadata.json"] = json.dumps(meta).encode()
    _write(path, members)
