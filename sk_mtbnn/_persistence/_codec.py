"""Values as JSON trees, arrays and tensors: the encoding of :mod:`sk_mtbnn.persistence`.

A value becomes a JSON tree whose leaves are JSON scalars or tagged objects
(``{"__tag__": ...}``); numpy arrays and torch tensors are stored apart, under
a key that the tree names (pandas DataFrames and Series too, as arrays and
labels: :mod:`._pandas`). Only the types below can be written and read back;
anything else is refused when saving (:class:`UnrepresentableError`), and an
unknown tag is refused when loading. Decoding never imports a module by a name
read from the file: classes come from fixed allow-lists.
"""

from __future__ import annotations

import inspect
import math
import types
from typing import Any

import numpy as np
import torch

#: Tags of the JSON objects (every JSON object written has exactly one of them).
_TAGS = (
    "__float__",
    "__tuple__",
    "__range__",
    "__list__",
    "__dict__",
    "__ndarray__",
    "__object_array__",
    "__npscalar__",
    "__tensor__",
    "__device__",
    "__random_state__",
    "__optimizer__",
    "__aggregator__",
    "__history__",
    "__estimator__",
    "__dataframe__",
    "__series__",
)


class UnrepresentableError(TypeError):
    """A value that the safe format cannot store (raised by :func:`sk_mtbnn.save`).

    Examples
    --------
    >>> import os, tempfile
    >>> import sk_mtbnn
    >>> from sk_mtbnn.persistence import UnrepresentableError
    >>> imp = sk_mtbnn.IterativeMagnitudePruning(
    ...     sk_mtbnn.SparseMultiTaskBNNRegressor(), scoring=lambda est, X, y, task: 0.0
    ... )
    >>> try:
    ...     sk_mtbnn.save(imp, os.path.join(tempfile.mkdtemp(), "m.skmtbnn"))
    ... except UnrepresentableError as error:
    ...     print(isinstance(error, TypeError), str(error)[:45])
    True IterativeMagnitudePruning.scoring is the func
    """


class FormatError(ValueError):
    """A file that :func:`sk_mtbnn.load` refuses: another version, corrupted or tampered.

    Examples
    --------
    >>> import os, tempfile
    >>> import sk_mtbnn
    >>> from sk_mtbnn.persistence import FormatError
    >>> path = os.path.join(tempfile.mkdtemp(), "m.skmtbnn")
    >>> with open(path, "wb") as file:
    ...     _ = file.write(b"not a model")
    >>> try:
    ...     sk_mtbnn.load(path)
    ... except FormatError as error:
    ...     print(isinstance(error, ValueError))
    True
    """


def _estimator_classes() -> dict[str, type]:
    from ..estimators import (
        BayesAggMTLClassifier,
        BayesAggMTLRegressor,
        SparseMultiTaskBNNRegressor,
    )
    from ..pruning import IterativeMagnitudePruning

    classes = (
        SparseMultiTaskBNNRegressor,
        BayesAggMTLRegressor,
        BayesAggMTLClassifier,
        IterativeMagnitudePruning,
    )
    return {c.__name__: c for c in classes}


def _aggregator_classes() -> dict[str, type]:
    from ..aggregators import BayesAgg, MeanAggregator, PCGrad, TaskSampling

    return {c.__name__: c for c in (BayesAgg, MeanAggregator, PCGrad, TaskSampling)}


def _optimizer_classes() -> dict[str, type]:
    """The optimisers of ``torch.optim`` itself, by name."""
    return {
        name: obj
        for name, obj in vars(torch.optim).items()
        if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)
    }


class Encoder:
    """Encodes values into JSON trees; collects the arrays and tensors they name.

    ``estimator_state(estimator, encoder, where)`` encodes the fitted state of
    an estimator (given by the caller, so that this module knows nothing of
    the networks).
    """

    def __init__(self, estimator_state) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.tensors: dict[str, torch.Tensor] = {}
        self._estimator_state = estimator_state

    def array(self, value: np.ndarray) -> str:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = value
        return key

    def tensor(self, value: torch.Tensor) -> str:
        key = f"t{len(self.tensors)}"
        self.tensors[key] = value.detach().cpu().clone()
        return key

    def value(self, v: Any, where: str):
        """The JSON tree of ``v``; ``where`` names it in error messages."""
        if v is None or type(v) in (bool, str):
            return v
        if type(v) is int:
            return v
        if type(v) is float:
            return v if math.isfinite(v) else {"__float__": repr(v)}
        if isinstance(v, np.generic) and not v.dtype.hasobject:
            return {"__npscalar__": self.array(np.asarray(v))}
        if isinstance(v, np.ndarray) and type(v) is np.ndarray:
            if not v.dtype.hasobject:
                return {"__ndarray__": self.array(v)}
            items = [self.value(x, f"{where}[...]") for x in v.ravel()]
            return {"__object_array__": list(v.shape), "items": items}
        if type(v) is torch.Tensor:
            return {"__tensor__": self.tensor(v), "requires_grad": v.requires_grad}
        if type(v) is torch.device:
            return {"__device__": str(v)}
        if type(v) is range:
            return {"__range__": [v.start, v.stop, v.step]}
        if type(v) is tuple:
            return {"__tuple__": [self.value(x, f"{where}[{i}]") for i, x in enumerate(v)]}
        if type(v) is list:
            return {"__list__": [self.value(x, f"{where}[{i}]") for i, x in enumerate(v)]}
        if type(v) is dict:
            return {
                "__dict__": [
                    [self.value(k, f"{where} key"), self.value(x, f"{where}[{k!r}]")]
                    for k, x in v.items()
                ]
            }
        if type(v) is np.random.RandomState:
            name, keys, pos, has_gauss, cached = v.get_state()
            return {"__random_state__": [name, self.array(keys), pos, has_gauss, cached]}
        if isinstance(v, type) and _optimizer_classes().get(v.__name__) is v:
            return {"__optimizer__": v.__name__}
        if type(v).__name__ in _aggregator_classes() and type(v) is _aggregator_classes().get(
            type(v).__name__
        ):
            return {"__aggregator__": type(v).__name__, "params": self._init_args(v, where)}
        if type(v).__name__ == "History" and type(v).__module__.startswith("skorch"):
            return {"__history__": self.value(list(v), where)}
        if type(v) is _estimator_classes().get(type(v).__name__):
            params = {
                name: self.value(p, f"{where}.{name}")
                for name, p in v.get_params(deep=False).items()
            }
            state = self._estimator_state(v, self, where)
            return {"__estimator__": type(v).__name__, "params": params, "state": state}
        from . import _pandas  # here: it imports this module's errors

        tag = _pandas.pandas_tag(v)
        if tag == "__dataframe__":
            return {tag: _pandas.encode_dataframe(v, self, where)}
        if tag == "__series__":
            return {tag: _pandas.encode_series(v, self, where)}
        raise UnrepresentableError(
            f"{where} is {_describe(v)}, which the safe format "
            "cannot store. It stores numbers, strings, ranges, numpy arrays, torch tensors, "
            "lists, tuples and dicts of these, torch.optim optimiser classes, torch devices, "
            "numpy RandomState objects, pandas DataFrames and Series of numeric columns, the "
            "aggregators "
            f"{sorted(_aggregator_classes())} and the sk_mtbnn estimators: pass one of these "
            "(e.g. an aggregator by its name, data as numpy arrays), or use pickle if you "
            "trust whoever loads the file."
        )

    def _init_args(self, obj, where: str) -> dict:
        """The constructor arguments of an unfitted aggregator (its whole state)."""
        names = [
            p.name
            for p in inspect.signature(type(obj).__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if not set(vars(obj)) <= set(names):
            raise UnrepresentableError(
                f"{where} is a {type(obj).__name__} that has been used in a fit (it holds "
                f"{sorted(set(vars(obj)) - set(names))}): pass a fresh one, or its name."
            )
        return {n: self.value(getattr(obj, n), f"{where}.{n}") for n in names if n in vars(obj)}


class Decoder:
    """Decodes the JSON trees of :class:`Encoder` given the arrays and tensors read."""

    def __init__(self, arrays, tensors, estimator_state, device=None) -> None:
        self.arrays = arrays
        self.tensors = tensors
        self._estimator_state = estimator_state
        self.device_override = device  # replaces every estimator's ``device`` when given

    def array(self, key) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise FormatError(f"the file names an array {key!r} that it does not contain.")
        return self.arrays[key]

    def tensor(self, key) -> torch.Tensor:
        if not isinstance(key, str) or key not in self.tensors:
            raise FormatError(f"the file names a tensor {key!r} that it does not contain.")
        return self.tensors[key]

    def value(self, node):
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is list:
            raise FormatError("an untagged JSON list where a value was expected.")
        if type(node) is not dict:
            raise FormatError(f"an unexpected JSON value of type {type(node).__name__}.")
        tags = [t for t in _TAGS if t in node]
        if len(tags) != 1:
            raise FormatError(f"a JSON object with keys {sorted(node)} is not a stored value.")
        return getattr(self, "_" + tags[0].strip("_"))(node[tags[0]], node)

    def _list_of(self, items) -> list:
        if type(items) is not list:
            raise FormatError("a tagged sequence whose items are not a JSON list.")
        return [self.value(x) for x in items]

    def _float(self, text, node):
        if text not in ("nan", "inf", "-inf"):
            raise FormatError(f"{text!r} is not a stored non-finite float.")
        return float(text)

    def _tuple(self, items, node):
        return tuple(self._list_of(items))

    def _range(self, bounds, node):
        if type(bounds) is not list or len(bounds) != 3 or any(type(b) is not int for b in bounds):
            raise FormatError("a stored range that is not three integers.")
        return range(*bounds)

    def _list(self, items, node):
        return self._list_of(items)

    def _dict(self, pairs, node):
        if type(pairs) is not list or any(type(p) is not list or len(p) != 2 for p in pairs):
            raise FormatError("a stored dict that is not a list of key-value pairs.")
        return {self.value(k): self.value(v) for k, v in pairs}

    def _ndarray(self, key, node):
        return self.array(key)

    def _npscalar(self, key, node):
        array = self.array(key)
        if array.ndim != 0:
            raise FormatError("a stored numpy scalar that is not 0-dimensional.")
        return array[()]

    def _object_array(self, shape, node):
        items = self._list_of(node.get("items"))
        out = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):  # item by item: lists stay objects
            out[i] = item
        try:
            return out.reshape(tuple(int(s) for s in shape))
        except (TypeError, ValueError):
            raise FormatError("a stored object array whose shape does not fit.") from None

    def _tensor(self, key, node):
        tensor = self.tensor(key).clone()
        return tensor.requires_grad_(bool(node.get("requires_grad", False)))

    def _device(self, name, node):
        if type(name) is not str:
            raise FormatError("a stored torch device that is not a string.")
        return torch.device(name)

    def _random_state(self, state, node):
        name, keys, pos, has_gauss, cached = state
        rng = np.random.RandomState()
        rng.set_state((name, self.array(keys), pos, has_gauss, cached))
        return rng

    def _optimizer(self, name, node):
        try:
            return _optimizer_classes()[name]
        except (KeyError, TypeError):
            raise FormatError(f"{name!r} is not an optimiser of torch.optim.") from None

    def _aggregator(self, name, node):
        cls = _lookup(_aggregator_classes(), name, "aggregator")
        return cls(**self._params(node.get("params")))

    def _history(self, items, node):
        from skorch.history import History

        return History(self.value(items))

    def _estimator(self, name, node):
        cls = _lookup(_estimator_classes(), name, "estimator class")
        params = self._params(node.get("params"))
        if self.device_override is not None and "device" in params:
            params["device"] = self.device_override
        estimator = cls(**params)
        if node.get("state") is not None:
            self._estimator_state(estimator, node["state"], self)
        return estimator

    def _dataframe(self, frame, node):
        from . import _pandas

        return _pandas.decode_dataframe(frame, self)

    def _series(self, series, node):
        from . import _pandas

        return _pandas.decode_series(series, self)

    def _params(self, params) -> dict:
        if type(params) is not dict:
            raise FormatError("stored parameters that are not a JSON object.")
        return {str(k): self.value(v) for k, v in params.items()}


def _describe(v) -> str:
    """``the class m.C``, ``the function m.f`` or ``a m.C`` (the type of an object)."""
    if isinstance(v, type):
        return f"the class {v.__module__}.{v.__qualname__}"
    if isinstance(v, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return f"the function {getattr(v, '__module__', '?')}.{v.__qualname__}"
    return f"a {type(v).__module__}.{type(v).__qualname__}"


def _lookup(classes: dict, name, what: str) -> type:
    if name not in classes:
        raise FormatError(
            f"the file names the {what} {name!r}, which is not one that sk_mtbnn loads "
            f"({sorted(classes)})."
        )
    return classes[name]
