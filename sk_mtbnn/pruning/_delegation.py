"""What the pruning meta-estimator delegates to its fitted estimator."""

from __future__ import annotations

from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted


def _estimator_has(name):
    def check(self):
        return hasattr(self.estimator_ if hasattr(self, "estimator_") else self.estimator, name)

    return check


class DelegatingMixin:
    """``predict``, ``sample_y``, ... of ``estimator_``, available when it has them."""

    # ----------------------------------------------------------- delegation
    @available_if(_estimator_has("predict"))
    def predict(self, X, **kwargs):
        """Delegate to ``estimator_.predict`` (``return_std`` and ``return_cov`` too).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query points.
        **kwargs
            Passed on, e.g. ``return_std=True``.

        Returns
        -------
        Whatever ``estimator_.predict`` returns.
        """
        check_is_fitted(self)
        return self.estimator_.predict(X, **kwargs)

    @available_if(_estimator_has("sample_y"))
    def sample_y(self, X, n_samples=1, random_state=0):
        """Delegate to ``estimator_.sample_y``.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
            Query points.
        n_samples : int, default=1
            Samples per query point.
        random_state : int, RandomState instance or None, default=0
            Seeds the draws.

        Returns
        -------
        y_samples : ndarray
            As ``estimator_.sample_y``.
        """
        check_is_fitted(self)
        return self.estimator_.sample_y(X, n_samples=n_samples, random_state=random_state)

    @available_if(_estimator_has("decompose_uncertainty"))
    def decompose_uncertainty(self, X):
        """Delegate to ``estimator_.decompose_uncertainty``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query points.

        Returns
        -------
        epistemic, aleatoric : ndarray
            As ``estimator_.decompose_uncertainty``.
        """
        check_is_fitted(self)
        return self.estimator_.decompose_uncertainty(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Delegate to ``estimator_.predict_proba``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query points.

        Returns
        -------
        proba : ndarray or list of ndarray
            As ``estimator_.predict_proba``.
        """
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predictive_entropy"))
    def predictive_entropy(self, X):
        """Delegate to ``estimator_.predictive_entropy``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query points.

        Returns
        -------
        entropy : ndarray
            As ``estimator_.predictive_entropy``.
        """
        check_is_fitted(self)
        return self.estimator_.predictive_entropy(X)

    def score(self, X, y, sample_weight=None):
        """Delegate to ``estimator_.score``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Test inputs.
        y : array-like
            Test targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            As ``estimator_.score``.
        """
        check_is_fitted(self)
        return self.estimator_.score(X, y, sample_weight=sample_weight)

    @property
    def n_features_in_(self):
        """Number of features seen during fit."""
        return self.estimator_.n_features_in_

    @property
    def classes_(self):
        """Classes of the fitted classifier."""
        return self.estimator_.classes_
