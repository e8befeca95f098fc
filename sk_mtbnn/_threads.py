"""One thread for small work: torch's intra-op threads and the BLAS libraries' threads.

For small full-batch work (a few hundred rows times a few hundred features)
more threads only add synchronisation, and on busy cores they cost far more:
measured on 2 shared cores, a default 300-row fit took 60 CPU-s with the
default threads and 2.1 CPU-s with one; L-BFGS-B's tiny BLAS calls alone were
57x slower. Both limits restore the previous counts on exit and are cheap
when nested: inside :func:`one_thread`, :func:`one_blas_thread` does nothing
(a limit costs about half a millisecond, and the evidence search sets one per
L-BFGS run, hundreds of times per fit).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

_depth = 0  # how many one_thread / one_blas_thread contexts are open


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """One BLAS thread inside (threadpoolctl); nothing to do inside another limit."""
    global _depth
    if _depth:
        yield
        return
    from threadpoolctl import threadpool_limits

    _depth += 1
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        _depth -= 1


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One torch intra-op thread and one BLAS thread inside, the previous counts restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with one_blas_thread():
            yield
    finally:
        torch.set_num_threads(previous)
