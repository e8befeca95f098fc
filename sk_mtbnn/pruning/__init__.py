"""Iterative magnitude pruning of the shared backbone (docs/algorithms.rst, alg-pruning)."""

from ._imp import IterativeMagnitudePruning, prune_masks
from .plotting import plot_mask_overlap, plot_validation_scores

__all__ = [
    "IterativeMagnitudePruning",
    "plot_mask_overlap",
    "plot_validation_scores",
    "prune_masks",
]
