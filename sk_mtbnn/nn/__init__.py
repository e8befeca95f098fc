"""Torch modules: masked backbone, task branches, VBLL heads (no scikit-learn here)."""

from .backbone import MaskedMLP, TaskBranches, TaskwiseLinear
from .covariance import DenseCovariance, DiagonalCovariance, LowRankCovariance
from .heads import GaussianVBLLHead, Predictive, StudentTVBLLHead
from .network import MultiTaskNetwork

__all__ = [
    "DenseCovariance",
    "DiagonalCovariance",
    "GaussianVBLLHead",
    "LowRankCovariance",
    "MaskedMLP",
    "MultiTaskNetwork",
    "Predictive",
    "StudentTVBLLHead",
    "TaskBranches",
    "TaskwiseLinear",
]
