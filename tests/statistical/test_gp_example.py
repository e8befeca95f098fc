"""scikit-learn's GaussianProcessRegressor example on noisy targets, regressor swapped in.

The steps mirror ``examples/gaussian_process/plot_gpr_noisy_targets.py`` of
scikit-learn (written anew here, not copied): f(x) = x sin(x) on [0, 10], six
training points drawn with ``RandomState(1)``, noise of standard deviation
0.75, ``predict(X, return_std=True)`` on a 1,000-point grid and a 95% band drawn
with ``fill_between``. Only the constructor changes.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF

from sk_mtbnn import SparseMultiTaskBNNRegressor


def run_example(make_regressor):
    X = np.linspace(start=0, stop=10, num=1_000).reshape(-1, 1)
    y = np.squeeze(X * np.sin(X))
    rng = np.random.RandomState(1)
    training_indices = rng.choice(np.arange(y.size), size=6, replace=False)
    X_train, y_train = X[training_indices], y[training_indices]
    noise_std = 0.75
    y_train_noisy = y_train + rng.normal(loc=0.0, scale=noise_std, size=y_train.shape)

    regressor = make_regressor(noise_std)
    regressor.fit(X_train, y_train_noisy)
    mean_prediction, std_prediction = regressor.predict(X, return_std=True)

    fig, ax = plt.subplots()
    ax.plot(X, y, label=r"$f(x) = x \sin(x)$", linestyle="dotted")
    ax.errorbar(
        X_train, y_train_noisy, noise_std, linestyle="None", marker=".", label="Observations"
    )
    ax.plot(X, mean_prediction, label="Mean prediction")
    ax.fill_between(
        X.ravel(),
        mean_prediction - 1.96 * std_prediction,
        mean_prediction + 1.96 * std_prediction,
        alpha=0.5,
        label=r"95% confidence interval",
    )
    ax.legend()
    plt.close(fig)
    at_train = regressor.predict(X_train, return_std=True)
    return mean_prediction, std_prediction, y_train_noisy, at_train


def test_noisy_targets_example_runs_with_the_regressor_swapped_in():
    gp = run_example(
        lambda noise_std: GaussianProcessRegressor(
            kernel=1 * RBF(length_scale=1.0, length_scale_bounds=(1e-2, 1e2)),
            alpha=noise_std**2,
            n_restarts_optimizer=9,
        )
    )
    ours = run_example(lambda noise_std: SparseMultiTaskBNNRegressor(random_state=0))
    for (mean, std, _, _), ref in zip([ours], [gp]):
        assert mean.shape == std.shape == ref[0].shape == (1000,)
        assert np.all(np.isfinite(mean)) and np.all(std > 0)
    # Sensible: the 95% band covers the noisy observations (at least 5 of 6;
    # the GP covers all 6). With six points the network cannot learn the
    # shape of x sin(x) the way the GP's kernel does; its band is wide.
    _, _, y_noisy, (m_train, s_train) = ours
    inside = np.abs(y_noisy - m_train) <= 1.96 * s_train
    assert inside.sum() >= 5
    # Not vacuous: the band stays within a few standard deviations of y.
    assert np.all(ours[1] < 3 * np.std(y_noisy) + 1)
