"""skorch nets of the BayesAgg-MTL estimators (ALGORITHMS.md §4).

* :class:`BayesAggRegressionNet` -- regression heads are exact Bayesian linear
  regressions on the detached representation, never trained by gradient: each
  batch's posterior uses the full-data posterior of the previous epoch as its
  prior; the full-data posterior is refreshed at every epoch's end from the
  statistics gathered during the epoch.
* :class:`MultiTaskClassifierNet` -- linear classification heads trained by
  their own cross-entropy; the backbone is updated by any aggregator, and with
  BayesAgg by the GGN/Newton posterior of each head around its current
  weights (full-data posterior of the previous epoch as prior) and Monte Carlo
  gradient moments.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch import Tensor

from ..aggregators.bayesagg import (
    binary_curvature,
    binary_gradient_moments,
    classification_curvature,
    factorised_newton_step,
    multiclass_gradient_moments,
    newton_step,
    posterior_samples,
    regression_gradient_moments,
)
from ..nn.blr import isotropic_prior, linear_stats, posterior, residual_variance
from ..nn.heads import masked_task_mean
from .net import MultiTaskNet, reset_aggregator


class BayesAggRegressionNet(MultiTaskNet):
    """BayesAgg-MTL for regression tasks with closed-form head posteriors.

    The network's Gaussian head is only a container: after every epoch it
    holds the full-data posterior (used for the validation loss), and the
    estimator conditions it on all rows at the end of fit.
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        super().on_train_begin(net, X=X, y=y, **kwargs)
        head = self.module_.head
        like = torch.zeros(1, dtype=torch.float64, device=head.mean.device)
        self.full_prior_ = isotropic_prior(head.n_tasks, head.dim, self.aggregator.gamma, like)
        self.epoch_stats_ = None
        tau = self.aggregator.tau
        # tau='auto': start at the standardised targets' variance, then use the
        # residual variance of each epoch's full-data posterior.
        start = 1.0 if tau == "auto" else float(tau) ** 2
        self.noise_var_ = torch.full(
            (head.n_tasks,), start, dtype=torch.float64, device=like.device
        )

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        x = to_tensor(Xi, device=self.device)
        y = to_tensor(yi, device=self.device).double()
        module, agg = self.module_, self.aggregator
        n_tasks = module.n_tasks
        h = module.backbone.shared_forward(x[:, module.backbone_columns])
        hd = h.detach().double()
        labelled = ~torch.isnan(y)
        stats = linear_stats(hd.unsqueeze(0).expand(n_tasks, *hd.shape), y)
        self.epoch_stats_ = stats if self.epoch_stats_ is None else self.epoch_stats_ + stats
        mean, precision = posterior(stats, self.noise_var_, *self.full_prior_)
        y0 = torch.where(labelled, y, torch.zeros_like(y))
        if agg.warming_up:
            # Linear scalarisation with the posterior-mean heads: the gradient of
            # the mean over tasks of the squared errors.
            mu, _ = regression_gradient_moments(hd, y0, mean, torch.zeros_like(precision))
            g = (mu * labelled.unsqueeze(-1)).sum(1) / n_tasks
        else:
            cov = torch.cholesky_inverse(torch.linalg.cholesky(precision))
            mu, var = regression_gradient_moments(hd, y0, mean, cov)
            g = agg.combine(mu, var, labelled, agg.s_regression)
        h.backward(gradient=(g / len(x)).to(h.dtype))
        resid = (
            y0 - torch.einsum("bd,td->bt", torch.nn.functional.pad(hd, (0, 1), value=1.0), mean)
        ).square()
        mse, present = masked_task_mean(resid.T, labelled)
        return {"loss": mse[present].sum().detach().float(), "y_pred": h}

    def on_epoch_end(self, net, **kwargs) -> None:
        if self.epoch_stats_ is not None:
            head, agg = self.module_.head, self.aggregator
            stats = self.epoch_stats_
            like = torch.zeros(1, dtype=torch.float64, device=head.mean.device)
            prior = isotropic_prior(head.n_tasks, head.dim, agg.gamma, like)
            mean, precision = posterior(stats, self.noise_var_, *prior)
            if agg.tau == "auto":
                self.noise_var_ = residual_variance(stats, mean).clamp_min(1e-6)
                mean, precision = posterior(stats, self.noise_var_, *prior)
            self.full_prior_ = (mean, precision)
            self.epoch_stats_ = None
            with torch.no_grad():
                head.mean.copy_(mean)
                head.log_noise_std.copy_(0.5 * torch.log(self.noise_var_))
            head.covariance.set_from_precision(precision)  # computed in float64
        super().on_epoch_end(net, **kwargs)


def classification_losses(logits: list[Tensor], y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-task mean cross-entropy over labelled rows ``(T,)`` and the tasks present.

    ``y`` holds class indices as floats, NaN where a label is missing.
    """
    losses, present = [], []
    for t, z in enumerate(logits):
        rows = ~torch.isnan(y[:, t])
        present.append(bool(rows.any()))
        if not present[-1]:
            losses.append(z.sum() * 0.0)
            continue
        target = y[rows, t]
        if z.shape[1] == 1:
            losses.append(F.binary_cross_entropy_with_logits(z[rows, 0], target.to(z.dtype)))
        else:
            losses.append(F.cross_entropy(z[rows], target.long()))
    return torch.stack(losses), torch.tensor(present, device=y.device)


class MultiTaskClassifierNet(NeuralNet):
    """skorch net of the multi-task classifier; any aggregator, BayesAgg included.

    With BayesAgg, the binary tasks' posteriors and gradient moments are
    computed for all binary tasks at once (batched linear algebra); each
    multiclass task has its own.
    """

    def __init__(self, *args, aggregator=None, aggregator_seed=0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.aggregator = aggregator
        self.aggregator_seed = aggregator_seed

    @property
    def uses_bayesagg(self) -> bool:
        return getattr(self.aggregator, "space", "parameters") == "representation"

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        super().on_train_begin(net, X=X, y=y, **kwargs)
        reset_aggregator(self, y)
        n_classes = self.module_.n_classes
        self.binary_tasks_ = [t for t, c in enumerate(n_classes) if c == 2]
        self.multiclass_tasks_ = [t for t, c in enumerate(n_classes) if c > 2]
        self.priors_ = self._isotropic_priors()
        self.cache_ = []

    def _weights(self, tasks) -> Tensor:
        return torch.stack([self.module_.head_weights(t).detach() for t in tasks])

    def _isotropic_priors(self) -> dict:
        """``N(0, gamma I)`` for the stacked binary heads and each multiclass head."""
        gamma = getattr(self.aggregator, "gamma", 1.0)
        priors = {}
        if self.binary_tasks_:
            w = self._weights(self.binary_tasks_)[:, 0]  # (Tb, D)
            eye = torch.eye(w.shape[1], dtype=w.dtype, device=w.device)
            priors["binary"] = (torch.zeros_like(w), (eye / gamma).expand(len(w), -1, -1))
        for t in self.multiclass_tasks_:
            n = self.module_.head_weights(t).numel()
            like = self.module_.heads[t].weight
            eye = torch.eye(n, dtype=like.dtype, device=like.device)
            priors[t] = (eye.new_zeros(n), eye / gamma)
        return priors

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        x = to_tensor(Xi, device=self.device)
        y = to_tensor(yi, device=self.device)
        module = self.module_
        if not self.uses_bayesagg:
            logits = module(x)
            losses, present = classification_losses(logits, y)
            self.aggregator.backward(
                losses,
                present,
                list(module.backbone.parameters()),
                list(module.heads.parameters()),
            )
            return {"loss": losses[present].sum().detach(), "y_pred": logits}
        h = module.backbone.shared_forward(x)
        leaf = h.detach().requires_grad_()
        logits = module.logits_from_representation(leaf)
        losses, present = classification_losses(logits, y)
        losses[present].sum().backward()  # heads' own gradients; leaf.grad = sum_t dl_t/dh
        self.cache_.append((leaf.detach(), y))
        if self.aggregator.warming_up:
            g = leaf.grad / module.n_tasks
        else:
            # In the training precision (float32): double precision costs twice
            # as much and the posteriors here are well conditioned (prior
            # precision I / gamma, a full-data prior from the previous epoch).
            g = self._bayesagg_gradient(leaf.detach(), y.to(leaf.dtype)) / len(x)
        h.backward(gradient=g.to(h.dtype))
        return {"loss": losses[present].sum().detach(), "y_pred": logits}

    def _bayesagg_gradient(self, h: Tensor, y: Tensor) -> Tensor:
        """Per-sample precision-weighted gradient ``(B, H)`` (ALGORITHMS.md §4)."""
        agg = self.aggregator
        labelled = ~torch.isnan(y)
        shape = (len(h), self.module_.n_tasks, h.shape[1])
        mu, var = h.new_zeros(shape), h.new_ones(shape)
        if self.binary_tasks_:
            tasks = self.binary_tasks_
            weight = self._weights(tasks)[:, 0]
            grad, ggn = binary_curvature(h, y[:, tasks], weight)
            mean, precision, chol = factorised_newton_step(
                weight, grad, ggn, *self.priors_["binary"]
            )
            w = posterior_samples(mean, precision, agg.n_mc_samples, agg.generator_, cholesky=chol)
            mu[:, tasks], var[:, tasks] = binary_gradient_moments(
                h, torch.nan_to_num(y[:, tasks]), w
            )
        for t in self.multiclass_tasks_:
            rows = labelled[:, t]
            if not bool(rows.any()):
                continue
            weight = self._weights([t])[0]
            grad, ggn = classification_curvature(h[rows], y[rows, t].long(), weight)
            mean, precision, chol = factorised_newton_step(weight, grad, ggn, *self.priors_[t])
            w = posterior_samples(mean, precision, agg.n_mc_samples, agg.generator_, cholesky=chol)
            mu[rows, t], var[rows, t] = multiclass_gradient_moments(
                h[rows], y[rows, t].long(), w.reshape(agg.n_mc_samples, *weight.shape)
            )
        return agg.combine(mu, var, labelled, agg.s_classification)

    def on_epoch_end(self, net, **kwargs) -> None:
        if self.uses_bayesagg and self.cache_:
            self.priors_ = self.full_data_posteriors(self.cache_)
            self.cache_ = []
        super().on_epoch_end(net, **kwargs)
        end_epoch = getattr(self.aggregator, "end_epoch", None)
        if end_epoch is not None:
            end_epoch()

    def full_data_posteriors(self, cache) -> dict:
        """Posteriors around the current weights from the epoch's cached features."""
        isotropic = self._isotropic_priors()
        posteriors = {}
        if self.binary_tasks_:
            tasks = self.binary_tasks_
            weight = self._weights(tasks)[:, 0]
            parts = [binary_curvature(h, y[:, tasks].to(h.dtype), weight) for h, y in cache]
            grad = sum(p[0] for p in parts)
            ggn = sum(p[1] for p in parts)
            posteriors["binary"] = newton_step(weight, grad, ggn, *isotropic["binary"])
        for t in self.multiclass_tasks_:
            weight = self._weights([t])[0]
            grad = weight.new_zeros(weight.numel())
            ggn = weight.new_zeros(len(grad), len(grad))
            for h, y in cache:
                rows = ~torch.isnan(y[:, t])
                if bool(rows.any()):
                    g, c = classification_curvature(h[rows], y[rows, t].long(), weight)
                    grad, ggn = grad + g, ggn + c
            posteriors[t] = newton_step(weight, grad, ggn, *isotropic[t])
        return posteriors

    def get_loss(self, y_pred, y_true, X=None, training=False):
        losses, present = classification_losses(y_pred, to_tensor(y_true, device=self.device))
        return losses[present].sum()
