"""Optional imports, input checks and the map of a fitted model over a dask array's row blocks."""

from __future__ import annotations

import importlib
import numbers
from collections.abc import Callable

import numpy as np


def import_optional(module: str, extra: str, purpose: str):
    """Import ``module``, or raise an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs {module.split('.')[0]!r}, which is not installed; install it "
            f'with: pip install "sk_mtbnn[{extra}]"'
        ) from exc


def check_dask_array(X, name: str, *, known_chunks: bool = False):
    """``X`` as a 2-D dask array whose columns are one chunk (rows stay chunked)."""
    da = import_optional("dask.array", "dask", "sk_mtbnn.distributed")
    if not isinstance(X, da.Array):
        raise TypeError(
            f"{name} must be a dask.array.Array; got {type(X).__name__}. Wrap an in-memory "
            "array with dask.array.from_array(X, chunks=(rows_per_block, -1)), or call the "
            "local method on it directly."
        )
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got {X.ndim}-D.")
    if known_chunks and any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            f"{name} has unknown chunk sizes (e.g. from a dask DataFrame); call "
            f"{name}.compute_chunk_sizes() first, or build it with to_dask_array(lengths=True)."
        )
    # Every block must hold whole rows: the model reads all features of a row.
    return X if len(X.chunks[1]) == 1 else X.rechunk({1: -1})


def as_model_input(model, block: np.ndarray):
    """A block as the model expects it: a DataFrame when it was fitted on named columns."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return block
    import pandas as pd  # present: the model was fitted on a DataFrame

    return pd.DataFrame(block, columns=names)


def map_rows(
    fn: Callable[[object, np.ndarray], np.ndarray],
    model,
    X,
    example: np.ndarray,
):
    """Lazy ``fn(model, block)`` over the row blocks of the dask array ``X``.

    ``example`` is ``fn``'s output on one row: its trailing shape and dtype
    give the output's. The model enters the graph once, as one
    :func:`dask.delayed` node that every block task depends on, so a
    distributed scheduler sends it to each worker once instead of pickling
    it into every task.
    """
    import dask

    tail = example.shape[1:]
    model_node = dask.delayed(model)
    if tail:
        kwargs = {"chunks": (X.chunks[0], *((n,) for n in tail))}
        kwargs.update({"new_axis": list(range(2, len(tail) + 1))} if len(tail) > 1 else {})
    else:
        kwargs = {"chunks": (X.chunks[0],), "drop_axis": 1}
    return X.map_blocks(
        _apply,
        fn,
        model_node,
        dtype=example.dtype,
        meta=np.empty((0, *tail), dtype=example.dtype),
        **kwargs,
    )


def _apply(block: np.ndarray, fn, model) -> np.ndarray:
    return np.asarray(fn(model, block))


def compute(*collections, scheduler=None, verbose=0, desc: str = "score pool"):
    """:func:`dask.compute`, with one tqdm bar over the graph's tasks when ``verbose >= 2``.

    The bar follows dask's local schedulers (threads, processes, synchronous),
    through a :class:`dask.callbacks.Callback`, as
    :class:`dask.diagnostics.ProgressBar` does; a distributed ``Client`` shows
    its progress on its own dashboard.
    """
    import dask

    if verbose is not None and not isinstance(verbose, numbers.Integral):
        raise ValueError(f"verbose must be an integer; got {verbose!r}.")
    if not verbose or verbose < 2:
        return dask.compute(*collections, scheduler=scheduler)
    from dask.callbacks import Callback
    from tqdm.auto import tqdm

    bar = []  # made once the scheduler knows the number of tasks

    def start_state(dsk, state) -> None:
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        bar.append(tqdm(total=total, unit="task", desc=desc, leave=True))

    def posttask(key, result, dsk, state, worker_id) -> None:
        bar[0].update(1)

    def finish(dsk, state, errored) -> None:
        bar[0].close()

    with Callback(start_state=start_state, posttask=posttask, finish=finish):
        return dask.compute(*collections, scheduler=scheduler)
