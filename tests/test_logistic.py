"""The hand-written logistic regression: numerics, gradient, descent, and sklearn as an oracle."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, shared_faces
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression


def test_sigmoid_is_stable_and_exact_at_known_points(nb):
    z = np.array([-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = nb.sigmoid(z)
    assert np.isfinite(p).all()
    assert p[3] == 0.5
    assert p[0] == 0.0 and p[-1] == 1.0
    np.testing.assert_allclose(p[2], 1 / (1 + np.exp(30.0)), rtol=1e-12)
    np.testing.assert_allclose(nb.sigmoid(-z), 1 - p, atol=1e-15)


def test_log_loss_matches_the_definition_and_stays_finite(nb):
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=50), rng.integers(0, 2, 50)
    p = 1 / (1 + np.exp(-z))
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert nb.log_loss(z, y) == pytest.approx(expected, rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extreme = nb.log_loss(np.array([1e5, -1e5]), np.array([0, 1]))
    assert extreme == pytest.approx(1e5)


def test_gradient_matches_finite_differences(nb):
    rng = np.random.default_rng(1)
    Xb = nb.with_bias_column(rng.normal(size=(40, 6)))
    y = rng.integers(0, 2, 40).astype(float)
    theta = rng.normal(size=7)
    l2 = 0.3
    step = 1e-6
    numeric = np.array([
        (nb.penalised_loss(theta + step * e, Xb, y, l2) - nb.penalised_loss(theta - step * e, Xb, y, l2)) / (2 * step)
        for e in np.eye(7)
    ])
    np.testing.assert_allclose(nb.gradient(theta, Xb, y, l2), numeric, rtol=1e-6, atol=1e-8)


def test_bias_is_not_penalised(nb):
    Xb = nb.with_bias_column(np.zeros((4, 2)))
    theta = np.array([2.0, 1.0, -1.0])
    y = np.ones(4)
    assert nb.penalised_loss(theta, Xb, y, 1.0) - nb.penalised_loss(theta, Xb, y, 0.0) == pytest.approx(1.0)


def test_loss_of_a_stack_of_thetas_is_the_loss_of_each(nb):
    rng = np.random.default_rng(3)
    Xb = nb.with_bias_column(rng.normal(size=(30, 4)))
    y = rng.integers(0, 2, 30).astype(float)
    thetas = rng.normal(size=(5, 5))
    each = [nb.penalised_loss(theta, Xb, y, 0.2) for theta in thetas]
    np.testing.assert_allclose(nb.penalised_loss(thetas.T, Xb, y, 0.2), each, rtol=1e-12)
    assert len(set(each)) == 5 and np.ndim(each[0]) == 0


def test_lipschitz_constant_bounds_the_curvature(nb):
    rng = np.random.default_rng(2)
    Xb = nb.with_bias_column(rng.normal(size=(200, 10)))
    exact = np.linalg.eigvalsh(Xb.T @ Xb).max() / (4 * len(Xb)) + 0.1
    estimate = nb.lipschitz_constant(Xb, 0.1)
    assert exact <= estimate <= 1.1 * exact


def test_gradient_descent_decreases_loss_and_keeps_every_kth_iterate(nb):
    rng = np.random.default_rng(3)
    Xb = nb.with_bias_column(rng.normal(size=(100, 5)))
    y = (Xb[:, 1] + rng.normal(size=100) > 0).astype(float)
    result = nb.gradient_descent(Xb, y, 0.5, 100, l2=0.01, momentum=False, tol=0.0, record_every=10)
    assert list(result["recorded_at"]) == list(range(0, 101, 10))
    assert result["history"].shape == (11, 6)
    assert np.all(np.diff(result["losses"]) < 0)


def test_momentum_stops_on_gradient_tolerance(nb):
    rng = np.random.default_rng(4)
    Xb = nb.with_bias_column(rng.normal(size=(100, 5)))
    y = (Xb[:, 1] + rng.normal(size=100) > 0).astype(float)
    result = nb.gradient_descent(Xb, y, 1.0 / nb.lipschitz_constant(Xb, 0.01), 10_000, l2=0.01, tol=1e-9)
    assert result["converged"] and result["recorded_at"][-1] < 10_000
    assert np.linalg.norm(nb.gradient(result["theta"], Xb, y, 0.01)) < 1e-8


def test_separable_data_trains_without_warnings_and_stays_finite(nb):
    X = np.r_[np.linspace(-3, -1, 20), np.linspace(1, 3, 20)][:, None]
    y = np.r_[np.zeros(20), np.ones(20)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = nb.LogisticRegression(1, iterations=5000, l2=0.0)
        model.fit(X, y)
        p = model.predict_proba(X)
    assert np.isfinite(model.w_vector).all()
    assert np.array_equal(p >= 0.5, y)
    assert np.isfinite(p).all()


def test_constant_columns_do_not_break_the_z_score(nb):
    rng = np.random.default_rng(5)
    X = np.c_[rng.normal(size=60), np.full(60, 7.0)]
    y = (X[:, 0] > 0).astype(float)
    model = nb.LogisticRegression(2, iterations=500, l2=0.01).fit(X, y)
    assert model.scale_[1] == 1.0 and model.wm[2] == 0.0
    assert np.isfinite(model.predict_proba(X)).all()


def test_squares_learn_a_difference_in_spread_that_a_line_cannot(nb):
    rng = np.random.default_rng(6)
    y = np.repeat([0, 1], 400)
    X = rng.normal(size=(800, 2)) * np.where(y == 1, 3.0, 1.0)[:, None]  # same mean, fakes spread wider
    accuracy = {quadratic: ((nb.LogisticRegression(2, l2=1e-3, quadratic=quadratic)
                            .fit(X, y).predict_proba(X) >= 0.5) == y).mean() for quadratic in (False, True)}
    assert accuracy[False] < 0.6 < 0.8 < accuracy[True]


@pytest.mark.parametrize("options", [{}, {"learning_rate": 0.1, "iterations": 300, "record_every": 25}],
                         ids=["lbfgs", "gradient descent"])
def test_averaged_subsets_give_the_mean_logit_of_their_own_models(nb, options):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(500, 6)) * [1, 2, 1, 3, 1, 1]
    y = (X[:, 0] - X[:, 3] + X[:, 4] ** 2 + rng.normal(size=500) > 1).astype(int)
    subsets = [np.ones(6, bool), np.arange(6) < 2, np.arange(6) >= 2]
    model = nb.LogisticRegression(6, l2=1e-2, quadratic=True, subsets=subsets, **options).fit(X, y)
    alone = [nb.LogisticRegression(int(subset.sum()), l2=1e-2, quadratic=True, **options).fit(X[:, subset], y)
             for subset in subsets]
    mean_logit = np.mean([m.decision_function(X[:, subset]) for m, subset in zip(alone, subsets, strict=True)], axis=0)
    np.testing.assert_allclose(model.decision_function(X), mean_logit, rtol=0, atol=1e-9)
    assert len({len(m.w_vector) for m in alone}) > 1 or options  # L-BFGS: fits of different lengths, padded
    np.testing.assert_array_equal(model.recorded_at_, max((m.recorded_at_ for m in alone), key=len))
    design = nb.with_bias_column(model.design(X))
    assert model.losses_[-1] == pytest.approx(nb.penalised_loss(model.wm, design, y, 1e-2), rel=1e-12)


def test_family_subsets_are_all_features_the_spectra_the_pairs_the_block_dct_and_colour(nb):
    settings = nb.feature_settings()
    family = nb.feature_columns(settings).family
    every, spectra, pairs, dct, colour = nb.family_subsets(settings)
    assert (every.sum(), spectra.sum(), pairs.sum(), dct.sum(), colour.sum()) == (326, 120, 55, 63, 88)
    assert set(family[spectra]) == {"ring", "cell"} and set(family[pairs]) == {"pair", "cross"}
    assert set(family[dct]) == {"dct"} and set(family[colour]) == {"colour"}
    assert len(nb.family_subsets(nb.feature_settings(dct_period=0, colour_below=0))) == 3
    lone = nb.feature_settings(residual_period=0, dct_period=0, colour_below=0)
    assert len(nb.family_subsets(lone)) == 1  # one family: no average


def test_quadratic_design_clips_then_squares_and_z_scores(nb):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 2))
    X[0, 0] = 50.0  # an outlier
    model = nb.LogisticRegression(2, iterations=50, quadratic=True).fit(X, rng.integers(0, 2, 300))
    design = model.design(X)
    z = np.clip((X - X.mean(axis=0)) / X.std(axis=0), -nb.Z_LIMIT, nb.Z_LIMIT)
    np.testing.assert_allclose(design[:, :2], z)
    np.testing.assert_allclose(design[:, 2:], (z**2 - (z**2).mean(axis=0)) / (z**2).std(axis=0))
    assert design.shape == (300, 4) and model.wm.shape == (5,)


def zscore(X):
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1)


def assert_matches_sklearn(nb, X, y, l2, iterations=20_000, solver="lbfgs"):
    """Our fit and scikit-learn's agree on probabilities (1e-4) and on >= 99.9% of labels."""
    X = zscore(X)
    ours = nb.LogisticRegression(X.shape[1], iterations=iterations, l2=l2, tol=1e-10, solver=solver).fit(X, y)
    reference = LogisticRegression(C=1 / (len(y) * l2), tol=1e-12, max_iter=100_000).fit(X, y)
    p_ours, p_ref = ours.predict_proba(X), reference.predict_proba(X)[:, 1]
    assert np.abs(p_ours - p_ref).max() < 1e-4
    assert np.mean((p_ours >= 0.5) == (p_ref >= 0.5)) >= 0.999


@pytest.mark.parametrize("solver", ["lbfgs", "newton", "gradient"])
def test_matches_sklearn_on_breast_cancer(nb, solver):
    data = load_breast_cancer()
    assert_matches_sklearn(nb, data.data, data.target, l2=1e-3, solver=solver)


def test_rows_repeated_by_weight_fit_sklearns_weighted_loss(nb):
    data = load_breast_cancer()
    rng = np.random.default_rng(3)
    rows = pd.DataFrame({"label": data.target, "fold": rng.integers(0, 5, len(data.target)),
                         "weight": rng.integers(1, 4, len(data.target)),
                         "small_image": rng.random(len(data.target)) < 0.3})
    mask = rng.random(len(rows)) < 0.8
    X, y, folds, small = nb.training_set(data.data, rows, mask)
    weight = rows.weight.to_numpy()[mask]
    assert len(y) == len(folds) == len(small) == weight.sum() > mask.sum()
    expected = np.repeat(rows[["fold", "label", "small_image"]].to_numpy()[mask], weight, axis=0)
    np.testing.assert_array_equal(np.c_[folds, y, small], expected)
    mean = np.average(data.data[mask], axis=0, weights=weight)  # z-scores of the weighted rows, as the model makes
    scale = np.sqrt(np.average((data.data[mask] - mean) ** 2, axis=0, weights=weight))
    ours = nb.LogisticRegression(X.shape[1], l2=1e-3, tol=1e-10, iterations=20_000).fit((X - mean) / scale, y)
    reference = LogisticRegression(C=1 / (weight.sum() * 1e-3), tol=1e-12, max_iter=100_000).fit(
        (data.data[mask] - mean) / scale, data.target[mask], sample_weight=weight)
    Z = (data.data - mean) / scale
    assert np.abs(ours.predict_proba(Z) - reference.predict_proba(Z)[:, 1]).max() < 1e-4


def test_hessian_matches_finite_differences_of_the_gradient(nb):
    rng = np.random.default_rng(8)
    Xb = nb.with_bias_column(rng.normal(size=(60, 5)))
    y = rng.integers(0, 2, 60).astype(float)
    theta, l2, step = rng.normal(size=6), 0.2, 1e-6
    numeric = np.array([
        (nb.gradient(theta + step * e, Xb, y, l2) - nb.gradient(theta - step * e, Xb, y, l2)) / (2 * step)
        for e in np.eye(6)
    ])
    np.testing.assert_allclose(nb.hessian(theta, Xb, l2), numeric, rtol=1e-5, atol=1e-6)


def test_newton_never_increases_the_loss_and_converges_in_few_steps(nb):
    rng = np.random.default_rng(7)
    Xb = nb.with_bias_column(rng.normal(size=(300, 20)) @ rng.normal(size=(20, 20)))
    y = (Xb[:, 1] + rng.normal(size=300) > 0).astype(float)
    result = nb.newton_method(Xb, y, 100, 1e-3, tol=1e-10)
    assert np.all(np.diff(result["losses"]) <= 0)
    assert result["converged"] and result["recorded_at"][-1] <= 20
    assert np.linalg.norm(nb.gradient(result["theta"], Xb, y, 1e-3)) < 1e-10


def test_lbfgs_lowers_the_loss_every_step_and_reaches_newtons_optimum(nb):
    rng = np.random.default_rng(7)
    Xb = nb.with_bias_column(rng.normal(size=(300, 20)) @ rng.normal(size=(20, 20)))
    y = (Xb[:, 1] + rng.normal(size=300) > 0).astype(float)
    result = nb.lbfgs(Xb, y, 1000, 1e-3, tol=1e-10)
    assert np.all(np.diff(result["losses"]) <= 1e-15)
    assert result["converged"] and result["recorded_at"][-1] < 500
    newton = nb.newton_method(Xb, y, 100, 1e-3, tol=1e-10)
    np.testing.assert_allclose(result["theta"], newton["theta"], rtol=0, atol=1e-7)


def test_lbfgs_direction_meets_the_secant_conditions_of_a_quadratic(nb):
    """On J = ½θᵀAθ the newest pair's gradient change maps back to its step, Ĥ⁻¹(As) = s; with
    A-conjugate steps (A's eigenvectors) every pair's does, and d of them give Ĥ⁻¹ = A⁻¹."""
    rng = np.random.default_rng(3)
    root = rng.normal(size=(5, 5))
    A = root @ root.T + np.eye(5)
    random_pairs = [(s, A @ s, 1.0 / (s @ A @ s)) for s in rng.normal(size=(4, 5))]
    newest_s, newest_g, _ = random_pairs[-1]
    np.testing.assert_allclose(nb.lbfgs_direction(newest_g, random_pairs), newest_s, rtol=1e-10)
    conjugate_pairs = [(s, A @ s, 1.0 / (s @ A @ s)) for s in np.linalg.eigh(A)[1].T]
    grad = rng.normal(size=5)
    np.testing.assert_allclose(nb.lbfgs_direction(grad, conjugate_pairs), np.linalg.solve(A, grad), rtol=1e-10)


def test_the_default_solver_in_memory_is_lbfgs(nb):
    data = load_breast_cancer()
    X = zscore(data.data)
    fits = {solver: nb.LogisticRegression(X.shape[1], l2=1e-3, solver=solver).fit(X, data.target)
            for solver in ("auto", "lbfgs", "newton")}
    np.testing.assert_array_equal(fits["auto"].wm, fits["lbfgs"].wm)
    assert fits["auto"].recorded_at_[-1] > fits["newton"].recorded_at_[-1]


def test_the_solver_is_checked(nb):
    with pytest.raises(ValueError, match="solver"):
        nb.LogisticModel(10, solver="adam")


def test_a_diverging_learning_rate_is_reported(nb):
    """With L2 = 1 a step of 100 multiplies θ by about -99 per iteration, until it overflows."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(float)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="learning rate is too large"):
        nb.gradient_descent(nb.with_bias_column(X), y, 100.0, 1000, l2=1.0, momentum=False)


def test_matches_sklearn_on_noisy_synthetic_data(nb):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(1000, 200))
    w = rng.normal(size=200) / 10
    y = (rng.random(1000) < 1 / (1 + np.exp(-(X @ w)))).astype(int)
    assert_matches_sklearn(nb, X, y, l2=1e-2)


def test_matches_sklearn_on_the_shared_faces(nb):
    paths, labels = shared_faces()
    X, errors = nb.extract_features(paths, settings=nb.feature_settings("both"), n_jobs=2,
                                    cache_dir=str(REPO / ".cache" / "features"))
    assert not errors
    assert_matches_sklearn(nb, X.astype(np.float64), labels, l2=1e-2)



def test_the_search_prefers_the_rate_and_penalty_that_validate_best(nb):
    """Plenty of rows for five features: the optimum generalises, so the search takes the rate that
    reaches it and the small penalty; tiny steps fall short, and a large penalty underfits."""
    rng = np.random.default_rng(10)
    X = rng.normal(size=(600, 5))
    y = (rng.random(600) < nb.sigmoid(2 * X[:, 0] - X[:, 1])).astype(int)
    folds = nb.stratified_folds(y, 3, seed=0)
    curves = nb.validation_curves(X, y, folds, [1e-4, 0.3], [1e-3, 1.0],
                                  lambda rate, l2: nb.SizeSplitRegression(5, learning_rate=rate, iterations=400,
                                                                          l2=l2, tol=0.0, record_every=25))
    assert len(curves) == 2 * 2 * 3 * 17 and set(curves.fold) == {0, 1, 2}
    summary = nb.search_summary(curves)
    assert list(summary[["learning_rate", "l2"]].itertuples(index=False, name=None))[0] == (0.3, 1e-3)
    assert summary.val_loss.is_monotonic_increasing and summary.val_accuracy[0] > 0.75
    assert summary[summary.learning_rate == 1e-4].val_loss.min() > summary.val_loss[0] + 0.05
    fold_0 = curves[(curves.learning_rate == 0.3) & (curves.l2 == 1e-3) & (curves.fold == 0)]
    model = nb.LogisticRegression(5, learning_rate=0.3, iterations=400, l2=1e-3, tol=0.0)
    model.fit(X[folds != 0], y[folds != 0])
    logits = model.decision_function(X[folds == 0])
    assert fold_0.val_loss.iloc[-1] == pytest.approx(nb.log_loss(logits, y[folds == 0]), rel=1e-12)
