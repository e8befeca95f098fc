"""Torch modules: masked backbone, task branches, VBLL heads (no scikit-learn here)."""

from .backbone import MaskedMLP, TaskBranches, TaskwiseLinear
from .covariance import DenseCovariance, DiagonalCovariance, LowRankCovariance
from .heads import GaussianVBLLHead, Predictive, StudentTVBLLHead, mixture_moments
from .heteroscedastic import HeteroscedasticVBLLHead
from .network import MultiTaskNetwork
from .random_features import RandomFourierFeatures

__all__ = [
    "DenseCovariance",
    "DiagonalCovariance",
    "GaussianVBLLHead",
    "HeteroscedasticVBLLHead",
    "LowRankCovariance",
    "MaskedMLP",
    "MultiTaskNetwork",
    "Predictive",
    "RandomFourierFeatures",
    "StudentTVBLLHead",
    "TaskBranches",
    "TaskwiseLinear",
    "mixture_moments",
]
