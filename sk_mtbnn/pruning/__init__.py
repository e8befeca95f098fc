"""Iterative magnitude pruning of the shared backbone (ALGORITHMS.md §5)."""

from ._imp import IterativeMagnitudePruning, prune_masks
from .plotting import plot_mask_overlap, plot_validation_scores

__all__ = [
    "IterativeMagnitudePruning",
    "plot_mask_overlap",
    "plot_validation_scores",
    "prune_masks",
]
