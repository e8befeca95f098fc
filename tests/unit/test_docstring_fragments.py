"""Shared docstring fragments expand in place, indented, nested, and never silently."""

import pytest

from sk_mtbnn._docstrings import FRAGMENTS, expand_doc, fill_doc


def test_a_placeholder_line_becomes_the_fragment_indented_as_it():
    doc = "Summary.\n\n    Parameters\n    ----------\n    %(X_query)s\n    other : int\n"
    assert expand_doc(doc) == (
        "Summary.\n\n    Parameters\n    ----------\n"
        "    X : array-like of shape (n_samples, n_features)\n        Query points.\n"
        "    other : int\n"
    )


def test_fragments_nest_and_extra_fragments_come_first():
    nested = expand_doc("%(gaussian_score_params)s")
    assert nested == FRAGMENTS["gaussian_predictions"] + "\n" + FRAGMENTS["multioutput"]
    assert expand_doc("  %(X_query)s", X_query="a\nb") == "  a\n  b"


def test_only_whole_lines_are_placeholders_and_unknown_names_fail_at_import():
    inline = "Shapes as in ``%(X_query)s`` stay as they are."
    assert expand_doc(inline) == inline
    with pytest.raises(KeyError, match="no_such_fragment"):

        @fill_doc
        def f():
            """%(no_such_fragment)s"""


def test_every_fragment_is_used_somewhere():
    import importlib
    import pkgutil

    import sk_mtbnn

    sources = []
    for info in pkgutil.walk_packages(sk_mtbnn.__path__, "sk_mtbnn."):
        spec = importlib.util.find_spec(info.name)
        if spec and spec.origin and spec.origin.endswith(".py"):
            with open(spec.origin, encoding="utf-8") as file:
                sources.append(file.read())
    text = "\n".join(sources)
    unused = [name for name in FRAGMENTS if f"%({name})s" not in text]
    assert not unused, f"fragments no docstring uses: {unused}"


@pytest.mark.parametrize(
    "name", ["SparseMultiTaskBNNRegressor", "BayesAggMTLRegressor", "BayesAggMTLClassifier"]
)
def test_estimators_render_every_parameter_once_in_signature_order(name):
    import inspect

    import sk_mtbnn

    NumpyDocString = pytest.importorskip("numpydoc.docscrape").NumpyDocString  # the docs extra
    cls = getattr(sk_mtbnn, name)
    assert "%(" not in cls.__doc__  # every placeholder expanded
    doc = NumpyDocString(inspect.cleandoc(cls.__doc__))
    documented = [p.name for p in doc["Parameters"]]
    assert documented == list(inspect.signature(cls).parameters)
    assert all(p.desc for p in doc["Parameters"] + doc["Attributes"])  # none left empty
    attributes = [p.name for p in doc["Attributes"]]
    assert len(attributes) == len(set(attributes))
