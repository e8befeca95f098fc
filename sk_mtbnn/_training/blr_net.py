"""The skorch net of BayesAgg-MTL regression: heads that are exact Bayesian linear regressions."""

from __future__ import annotations

import torch
from torch import Tensor

from ..aggregators.base import GradientMoments
from ..nn.blr import isotropic_prior, linear_stats, posterior, residual_variance, with_bias
from ..nn.heads import masked_task_mean
from .net import MultiTaskNet, regression_gradient_moments


class BayesAggRegressionNet(MultiTaskNet):
    """Regression heads with closed-form posteriors, never trained by gradient.

    Each batch's head posterior is the exact Bayesian linear regression on the
    detached representation, with the full-data posterior of the previous
    epoch as its prior (Section 3.1 of Achituve et al., 2024); the full-data
    posterior is refreshed at every epoch's end from the statistics gathered
    during the epoch, with prior ``N(0, prior_var I)``. The gradient moments
    come from the batch posterior, in closed form. The network's Gaussian
    head is only a container: after every epoch it holds the full-data
    posterior (used for the validation loss), and the estimator conditions it
    on all rows at the end of fit. Computed in float64.

    Parameters
    ----------
    prior_var : float
        Prior variance of the head weights.
    tau : float or "auto"
        Noise standard deviation of the posteriors (standardised targets);
        ``"auto"`` starts at 1 and takes, after every epoch, each task's
        residual standard deviation under its full-data posterior.
    **kwargs
        Passed to :class:`~sk_mtbnn._training.net.MultiTaskNet`.
    """

    def __init__(self, *args, prior_var=1.0, tau="auto", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prior_var = prior_var
        self.tau = tau

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        super().on_train_begin(net, X=X, y=y, **kwargs)
        head = self.module_.head
        self.full_prior_ = self._isotropic_prior()
        self.epoch_stats_ = None
        start = 1.0 if self.tau == "auto" else float(self.tau) ** 2
        self.noise_var_ = torch.full(
            (head.n_tasks,), start, dtype=torch.float64, device=head.mean.device
        )

    def _isotropic_prior(self):
        head = self.module_.head
        like = torch.zeros(1, dtype=torch.float64, device=head.mean.device)
        return isotropic_prior(head.n_tasks, head.dim, self.prior_var, like)

    def representation_losses(self, h: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Squared errors of the batch posterior's mean heads; gathers the epoch's statistics."""
        h64, y = h.double(), y.double()
        hd = h64.detach()  # finite: representation_step checks it
        stats = linear_stats(hd.unsqueeze(0).expand(self.module_.n_tasks, *hd.shape), y)
        self.epoch_stats_ = stats if self.epoch_stats_ is None else self.epoch_stats_ + stats
        self.batch_posterior_ = posterior(stats, self.noise_var_, *self.full_prior_)
        labelled = ~torch.isnan(y)
        fitted = with_bias(h64) @ self.batch_posterior_[0].T  # (B, T)
        resid = (torch.where(labelled, y, 0.0) - fitted).square()
        mse, present = masked_task_mean(resid.T, labelled)
        return mse, present, h

    def gradient_moments(self, h: Tensor, y: Tensor) -> GradientMoments:
        """Exact moments of the squared-loss gradient under the batch posterior."""
        mean, precision = self.batch_posterior_
        y = y.double()
        labelled = ~torch.isnan(y)
        cov = torch.cholesky_inverse(torch.linalg.cholesky(precision))
        mu, var = regression_gradient_moments(h.double(), torch.where(labelled, y, 0.0), mean, cov)
        return GradientMoments(mu, var, labelled, "regression")

    def on_epoch_end(self, net, **kwargs) -> None:
        if self.epoch_stats_ is not None:
            head, stats = self.module_.head, self.epoch_stats_
            prior = self._isotropic_prior()
            mean, precision = posterior(stats, self.noise_var_, *prior)
            if self.tau == "auto":
                self.noise_var_ = residual_variance(stats, mean).clamp_min(1e-6)
                mean, precision = posterior(stats, self.noise_var_, *prior)
            self.full_prior_ = (mean, precision)
            self.epoch_stats_ = None
            with torch.no_grad():
                head.mean.copy_(mean)
                head.log_noise_std.copy_(0.5 * torch.log(self.noise_var_))
            head.covariance.set_from_precision(precision)  # computed in float64
        super().on_epoch_end(net, **kwargs)
