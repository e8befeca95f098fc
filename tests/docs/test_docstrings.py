"""Every public class and function documents itself with a runnable example."""

import importlib
import inspect

import pytest

import sk_mtbnn

MODULES = [
    "sk_mtbnn",
    "sk_mtbnn.aggregators",
    "sk_mtbnn.active_learning",
    "sk_mtbnn.pruning",
    "sk_mtbnn.metrics",
    "sk_mtbnn.datasets",
    "sk_mtbnn.search",
    "sk_mtbnn.explain",
    "sk_mtbnn.distributed",
]


def public_objects():
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{name}.{attr}", obj


OBJECTS = dict(public_objects())


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_numpydoc_docstring_with_a_runnable_example(name):
    obj = OBJECTS[name]
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    # The examples are collected and run by pytest's --doctest-modules.
    assert "Examples\n--------" in doc and ">>>" in doc, f"{name} has no Examples section"
    params = [p for p in inspect.signature(obj).parameters if p not in ("self", "args", "kwargs")]
    if (params and not inspect.isclass(obj)) or (inspect.isclass(obj) and params):
        assert "Parameters\n----------" in doc, f"{name} documents no Parameters"


def test_version_is_exposed():
    assert sk_mtbnn.__version__
