"""The fitted state of an estimator: its attributes, and its networks rebuilt by its own hooks.

Saving stores every attribute the last fit set (``_fit_state_names``) through
:mod:`._codec`, except the skorch net and the float64 inference copy. Those
are stored as state dicts plus the public plain attributes of every submodule;
loading rebuilds the network with the estimator's ``_build_module`` and
``_net_spec`` hooks (exactly the classes a fit would build), then loads the
state dicts strictly. Saving checks that a network built so has the same
structure (parameter and buffer names, shapes, dtypes and submodule types),
and refuses the estimator otherwise.

Not stored: the optimiser's state and the validation rows that the net's
callbacks held, which only continuing the interrupted training would need
(a refit trains anew). The restored net is initialised as in the evidence
regime: module and history, no optimiser.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..estimators._base import TrainingData, seeded
from ..estimators._device import check_device
from ..estimators._torch_utils import inference_copy
from ._codec import FormatError, UnrepresentableError

#: Attributes that every torch module has (hooks, registries): never stored.
_MODULE_INTERNALS = frozenset(vars(nn.Module()))
#: Fitted attributes handled here rather than by the codec.
_NETWORK_NAMES = frozenset({"net_", "_inference_module", "_inference_stamp"})


def encode_state(estimator, encoder, where: str):
    """The fitted state of ``estimator`` (None if unfitted) as a JSON tree."""
    names = getattr(estimator, "_fit_state_names", None)
    recorded = names is not None
    if not recorded:
        if not _is_fitted(estimator):
            return None
        # Trained through the skeleton's hooks by a meta-estimator (pruning),
        # not by fit: its fitted state is everything but its parameters.
        params = set(estimator.get_params(deep=False))
        names = tuple(sorted(set(vars(estimator)) - params))
    has_net = "net_" in vars(estimator)
    if has_net:
        estimator._inference()  # the float64 copy in step with net_ (as before pickling)
    attributes = {}
    for name in names:
        if name in _NETWORK_NAMES or name == "_fit_state_names":
            continue
        value = getattr(estimator, name)
        if name == "history_" and has_net and value is estimator.net_.history:
            continue  # restored as the net's own history
        attributes[name] = encoder.value(value, f"{where}.{name}")
    state = {"names": list(names), "recorded": recorded, "attributes": attributes}
    if has_net:
        state["net"] = _encode_net(estimator, encoder, f"{where}.net_")
        state["net"]["is_history_"] = "history_" in names and "history_" not in attributes
    return state


def decode_state(estimator, state, decoder) -> None:
    """Restore the fitted state that :func:`encode_state` wrote into ``estimator``."""
    if type(state) is not dict or type(state.get("attributes")) is not dict:
        raise FormatError("the fitted state of an estimator is not a JSON object.")
    names = tuple(str(n) for n in state.get("names", ()))
    for name, node in state["attributes"].items():
        _check_attribute_name(estimator, name)
        setattr(estimator, name, decoder.value(node))
    if "net" in state:
        _decode_net(estimator, state["net"], decoder)
        if state["net"].get("is_history_"):
            estimator.history_ = estimator.net_.history
    missing = set(names) - set(vars(estimator))
    if missing:
        raise FormatError(f"the file lacks the fitted attributes {sorted(missing)}.")
    if state.get("recorded", True):
        estimator._fit_state_names = names


def _check_attribute_name(obj, name, private: bool = True) -> None:
    """Refuse names that would replace a method or a special attribute of ``obj``."""
    valid = isinstance(name, str) and name.isidentifier() and not name.startswith("__")
    if (
        not valid
        or (not private and name.startswith("_"))
        or callable(getattr(type(obj), name, None))
    ):
        raise FormatError(
            f"the file sets an attribute {name!r} that {type(obj).__name__} does not store."
        )


def _is_fitted(estimator) -> bool:
    check = getattr(estimator, "__sklearn_is_fitted__", None)
    return bool(check()) if check is not None else False


# ------------------------------------------------------------------ the net
def _net_settings(net) -> dict:
    """What the hooks need to rebuild the net (the rest is in the state dicts)."""
    return {
        "seed": int(net.aggregator_seed),
        "batch_size": int(net.batch_size),
        "max_epochs": int(net.max_epochs),
        "aggregator": net.aggregator is not None,
    }


def _rebuild(estimator, settings: dict):
    """A module and skorch net built by the estimator's hooks, as a fit would."""
    n_features, n_tasks = int(estimator.n_features_in_), int(estimator.n_tasks_)
    # Stand-in data: the hooks read only shapes and settings from it (the
    # weights, noise and criterion they derive from data are loaded after).
    zeros = (np.zeros((2, n_features), np.float32), np.zeros((2, n_tasks), np.float32))
    data = TrainingData(
        X=zeros[0],
        Y=zeros[1],
        train=zeros,
        valid=None,
        n_labelled=np.zeros(n_tasks, dtype=int),
        seed=settings["seed"],
        batch_size=settings["batch_size"],
        max_epochs=settings["max_epochs"],
    )
    with seeded(settings["seed"]):
        module = estimator._build_module(data)
        net_class, criterion, kwargs = estimator._net_spec(module, data)
    if not settings["aggregator"]:
        kwargs["aggregator"] = None
    net = estimator._build_net(net_class, module, criterion, data, **kwargs)
    net._initialize_module()
    net._initialize_history()
    return net


def _encode_net(estimator, encoder, where: str) -> dict:
    net = estimator.net_
    settings = _net_settings(net)
    fresh = _rebuild(copy.copy(estimator), settings)
    criterion = getattr(net, "criterion_", net.criterion)
    return {
        "settings": settings,
        "module": _encode_module(net.module_, fresh.module_, encoder, f"{where}.module_"),
        "inference_module": _encode_module(
            estimator._inference_module,
            inference_copy(fresh.module_, estimator.device),
            encoder,
            f"{where} (float64 inference copy)",
        ),
        "criterion": _encode_module(criterion, fresh.criterion, encoder, f"{where}.criterion")
        if isinstance(criterion, nn.Module)
        else None,
        "history": encoder.value(net.history, f"{where}.history"),
    }


def _decode_net(estimator, node, decoder) -> None:
    if type(node) is not dict or type(node.get("settings")) is not dict:
        raise FormatError("the stored network is not a JSON object.")
    try:
        check_device(estimator.device)
    except ValueError as error:
        raise ValueError(f"{error} Pass load(path, device='cpu') to load it on the CPU.") from None
    net = _rebuild(estimator, node["settings"])
    _decode_module(net.module_, node["module"], decoder, "net_.module_")
    if node.get("criterion") is not None:
        _decode_module(net.criterion, node["criterion"], decoder, "net_.criterion")
    net.history = decoder.value(node["history"])
    estimator.net_ = net
    inference = inference_copy(net.module_, estimator.device)
    _decode_module(inference, node["inference_module"], decoder, "the inference copy")
    estimator._inference_module = inference
    estimator._sync_inference_stamp()


# --------------------------------------------------------------- a module
def _encode_module(module: nn.Module, fresh: nn.Module, encoder, where: str) -> dict:
    """State dict, non-persistent buffers, public plain attributes and train/eval flags."""
    _check_same_structure(module, fresh, where)
    state = {k: encoder.tensor(v) for k, v in module.state_dict().items()}
    persistent = set(module.state_dict())
    buffers = {k: encoder.tensor(v) for k, v in module.named_buffers() if k not in persistent}
    fresh_modules = dict(fresh.named_modules())
    attributes = {}
    for name, sub in module.named_modules():
        own = {}
        for key, value in vars(sub).items():
            if key in _MODULE_INTERNALS or key.startswith("_"):
                continue  # hooks and private caches are rebuilt fresh
            try:
                own[key] = encoder.value(value, f"{where}.{name}.{key}".replace("..", "."))
            except UnrepresentableError:
                if vars(fresh_modules[name]).get(key, object()) is not value:
                    raise
        attributes[name] = own
    training = [name for name, sub in module.named_modules() if sub.training]
    return {"state": state, "buffers": buffers, "attributes": attributes, "training": training}


def _decode_module(module: nn.Module, node, decoder, where: str) -> None:
    if type(node) is not dict:
        raise FormatError(f"the stored state of {where} is not a JSON object.")
    state = {str(k): decoder.tensor(v) for k, v in node.get("state", {}).items()}
    expected = module.state_dict()
    for key, tensor in state.items():
        ref = expected.get(key)
        if ref is not None and (ref.shape != tensor.shape or ref.dtype != tensor.dtype):
            raise FormatError(
                f"{where}: the stored {key} has shape {tuple(tensor.shape)} and dtype "
                f"{tensor.dtype}, the rebuilt network {tuple(ref.shape)} and {ref.dtype}."
            )
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise FormatError(f"{where} does not fit the rebuilt network: {error}") from None
    modules = dict(module.named_modules())
    for key, key_id in node.get("buffers", {}).items():
        owner, _, leaf = str(key).rpartition(".")
        with torch.no_grad():
            _submodule(modules, owner, where).get_buffer(leaf).copy_(decoder.tensor(key_id))
    for name, own in node.get("attributes", {}).items():
        sub = _submodule(modules, name, where)
        for key, value in own.items():
            _check_attribute_name(sub, key, private=False)
            setattr(sub, key, decoder.value(value))
    training = set(node.get("training", ()))
    for name, sub in modules.items():
        sub.training = name in training


def _submodule(modules: dict, name, where: str) -> nn.Module:
    if name not in modules:
        raise FormatError(f"{where} has no submodule {name!r}.")
    return modules[name]


def _check_same_structure(module: nn.Module, fresh: nn.Module, where: str) -> None:
    """Refuse a network that its estimator's hooks would not rebuild identically."""
    ours = [(n, type(m)) for n, m in module.named_modules()]
    theirs = [(n, type(m)) for n, m in fresh.named_modules()]
    shapes = {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}
    rebuilt = {k: (tuple(v.shape), v.dtype) for k, v in fresh.state_dict().items()}
    buffers = sorted(n for n, _ in module.named_buffers())
    if (
        ours != theirs
        or shapes != rebuilt
        or buffers != sorted(n for n, _ in fresh.named_buffers())
    ):
        diff = sorted(set(shapes.items()) ^ set(rebuilt.items()), key=str)[:3]
        raise UnrepresentableError(
            f"{where} differs from the network that the estimator's parameters build "
            f"(first differences: {diff or 'submodule types'}); it was changed after fit "
            "in a way the safe format cannot record. Refit the estimator, or use pickle."
        )
