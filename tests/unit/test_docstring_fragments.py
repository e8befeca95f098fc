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


ESTIMATORS = [
    "SparseMultiTaskBNNRegressor",
    "BayesAggMTLRegressor",
    "BayesAggMTLClassifier",
    "IterativeMagnitudePruning",
]


@pytest.mark.parametrize("name", ESTIMATORS)
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


SPARSE, REGRESSOR, CLASSIFIER, PRUNING = ESTIMATORS
# Which estimators document an entry with a fragment (their own sentences may follow it).
ENTRY_FRAGMENTS = {
    "fit_attributes": [SPARSE, REGRESSOR, CLASSIFIER],
    "masks_attribute": [SPARSE, REGRESSOR, PRUNING],
    "noise_std_attribute": [SPARSE, REGRESSOR],
    "estimators_attribute": [SPARSE, REGRESSOR],
    "n_iter_no_change_param": [SPARSE, REGRESSOR, CLASSIFIER],
    "normalize_y_param": [SPARSE, REGRESSOR],
    "regressor_run_params": [SPARSE, REGRESSOR],
    "random_state_param": [SPARSE, REGRESSOR, CLASSIFIER],
}
# Fragments that start the description of a parameter: (parameter, estimators).
DESCRIPTION_FRAGMENTS = {
    "aggregator_options": ("aggregator", [SPARSE, CLASSIFIER]),
    "ensemble_members": ("n_estimators", [SPARSE, REGRESSOR]),
    "known_noise": ("alpha", [SPARSE, REGRESSOR]),
}


def _entries(text):
    """``{name: (type, description lines)}`` of numpydoc Parameters and Attributes."""
    import inspect

    NumpyDocString = pytest.importorskip("numpydoc.docscrape").NumpyDocString  # the docs extra
    doc = NumpyDocString(inspect.cleandoc(text))
    return {p.name: (p.type, p.desc) for p in doc["Parameters"] + doc["Attributes"]}


@pytest.mark.parametrize("fragment", sorted(ENTRY_FRAGMENTS))
def test_shared_entries_render_the_fragment(fragment):
    import sk_mtbnn

    shared = _entries("Parameters\n----------\n" + expand_doc(FRAGMENTS[fragment]))
    for name in ENTRY_FRAGMENTS[fragment]:
        entries = _entries(getattr(sk_mtbnn, name).__doc__)
        for entry, (kind, desc) in shared.items():
            assert entries[entry][0] == kind, (name, entry)
            assert entries[entry][1][: len(desc)] == desc, (name, entry)


@pytest.mark.parametrize("fragment", sorted(DESCRIPTION_FRAGMENTS))
def test_shared_descriptions_start_with_the_fragment(fragment):
    import sk_mtbnn

    param, names = DESCRIPTION_FRAGMENTS[fragment]
    lines = expand_doc(FRAGMENTS[fragment]).split("\n")
    for name in names:
        desc = _entries(getattr(sk_mtbnn, name).__doc__)[param][1]
        assert desc[: len(lines)] == lines, name
