"""Compatibility of modAL 0.4.1 with current scikit-learn and pandas.

modAL 0.4.1 calls ``sklearn.utils.check_X_y(..., force_all_finite=...)`` in
``teach``/``fit``; scikit-learn 1.8 removed that argument in favour of
``ensure_all_finite`` (modAL issue #196), so every ``teach`` fails with a
``TypeError``. (And with ``force_all_finite=False`` modAL means to accept NaN
targets, which scikit-learn's multi-output ``check_X_y`` never did: the
replacement lets them through, for missing labels.) It also stacks
DataFrames with ``DataFrame.append``, removed in pandas 2.0.
:func:`patch_modal` replaces the two helpers inside ``modAL.models.base`` with
thin translations, and only when the installed
versions need it; importing :mod:`sk_mtbnn.active_learning` applies it, so a
user's modAL code stays unchanged.
"""

from __future__ import annotations

import inspect


def _needs_check_X_y_patch(base) -> bool:
    from sklearn.utils import check_X_y

    modal_passes_it = "force_all_finite" in inspect.signature(base.BaseLearner.__init__).parameters
    sklearn_accepts_it = "force_all_finite" in inspect.signature(check_X_y).parameters
    return modal_passes_it and not sklearn_accepts_it


def _translated_check_X_y(original):
    from sklearn.utils.validation import check_array, check_consistent_length

    def check_X_y(X, y, force_all_finite=True, **kwargs):
        if force_all_finite:
            return original(X, y, ensure_all_finite=True, **kwargs)
        # modAL documents force_all_finite=False as "accepts np.nan and np.inf";
        # scikit-learn's check_X_y always refuses them in a multi-output y,
        # so check X and y separately (missing labels are NaN).
        kwargs.pop("multi_output", None)
        X = check_array(X, ensure_all_finite=False, **kwargs)
        y = check_array(y, ensure_all_finite=False, ensure_2d=False, dtype=None)
        check_consistent_length(X, y)
        return X, y

    check_X_y.__doc__ = "scikit-learn's check_X_y, accepting modAL 0.4.1's force_all_finite."
    check_X_y._sk_mtbnn_patch = True
    return check_X_y


def _pandas_safe_vstack(original):
    def data_vstack(blocks):
        import pandas as pd

        if isinstance(blocks[0], pd.DataFrame):
            return pd.concat(list(blocks))
        return original(blocks)

    data_vstack._sk_mtbnn_patch = True
    return data_vstack


def patch_modal() -> list[str]:
    """Patch the installed modAL where it is incompatible; return what was patched.

    Safe to call several times and a no-op when modAL is not installed or
    already compatible.

    Returns
    -------
    patched : list of str
        Names of the replaced helpers in ``modAL.models.base``.

    Examples
    --------
    >>> from sk_mtbnn.active_learning import patch_modal
    >>> isinstance(patch_modal(), list)
    True
    """
    try:
        import modAL.models.base as base
    except ImportError:
        return []
    patched = []
    if getattr(base.check_X_y, "_sk_mtbnn_patch", False):
        patched.append("check_X_y")
    elif _needs_check_X_y_patch(base):
        base.check_X_y = _translated_check_X_y(base.check_X_y)
        patched.append("check_X_y")
    if getattr(base.data_vstack, "_sk_mtbnn_patch", False):
        patched.append("data_vstack")
    else:
        try:
            import pandas as pd
        except ImportError:
            pd = None
        if pd is not None and not hasattr(pd.DataFrame, "append"):
            base.data_vstack = _pandas_safe_vstack(base.data_vstack)
            patched.append("data_vstack")
    return patched
