"""Explanations that add up, calibration that is measured and stored."""

import copy

import matplotlib
import numpy as np
import pytest
from conftest import noise_image
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

matplotlib.use("Agg")


@pytest.fixture(scope="module", params=[False, True], ids=["linear", "quadratic"])
def model(nb, request):
    rng = np.random.default_rng(0)
    settings = nb.feature_settings()
    X = rng.normal(size=(400, len(nb.feature_names(settings)))).astype(np.float32)
    y = (X[:, 0] - X[:, 100] + X[:, 250] ** 2 + rng.normal(size=400) > 1).astype(int)
    return nb.LogisticModel(X.shape[1], settings, quadratic=request.param, l2=1e-2).fit(X, y), X, y


def test_the_terms_of_an_explanation_add_up_to_the_logit(nb, model):
    model, X, _ = model
    rows = X[np.random.default_rng(1).choice(len(X), 25, replace=False)]
    terms = nb.logit_terms(model, rows)
    np.testing.assert_allclose(terms.sum(axis=1), model.decision_function(rows), rtol=0, atol=1e-9)
    families = nb.feature_families(model)
    assert len(families) == model.wm.size - 1  # one family for every design column
    assert set(terms.columns) == {"bias", *families} and terms.columns[0] == "bias"
    kinds = {"rings", "2-D cells", "residual pairs", "row × column pairs", "block DCT", "colour cues"}
    assert {family.split(",")[0].removesuffix(" (squared)") for family in families} == kinds
    assert sum(family.endswith("(squared)") for family in families) == (len(families) // 2 if model.quadratic else 0)
    design = model.design(rows)
    for family in families[:: max(1, len(set(families)) // 4)]:  # a family's term is its columns' sum
        columns = np.array([f == family for f in families])
        np.testing.assert_allclose(terms[family], design[:, columns] @ model.wm[1:][columns], atol=1e-12)


def test_explain_draws_an_image_and_returns_its_terms(nb, model, tmp_path):
    model, _, _ = model
    path = tmp_path / "face.png"
    path.write_bytes(nb.cv2.imencode(".png", noise_image(128))[1].tobytes())
    terms = nb.explain(model, path, "jpeg75")
    X, _ = nb.extract_features([path], ["jpeg75"], model.settings)
    assert terms.sum() == pytest.approx(model.decision_function(X)[0], abs=1e-9)
    assert nb.plt.gcf().axes and len(nb.plt.gcf().axes) == 4


def test_platt_scaling_recovers_a_known_miscalibration(nb):
    rng = np.random.default_rng(2)
    z = rng.normal(0, 3, 40_000)
    y = (rng.random(40_000) < nb.sigmoid(0.5 * z - 0.7)).astype(int)  # an over-confident score, shifted
    slope, intercept = nb.platt_scaling(z, y)
    assert slope == pytest.approx(0.5, abs=0.03) and intercept == pytest.approx(-0.7, abs=0.05)
    assert nb.brier_score(y, nb.sigmoid(slope * z + intercept)) < nb.brier_score(y, nb.sigmoid(z))


def test_calibration_uses_logits_of_models_that_never_saw_the_row(nb):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] + rng.normal(size=300) > 0).astype(int)
    folds = np.arange(300) % 3

    def make_model():
        return nb.LogisticRegression(5, l2=1e-2)

    models = nb.fold_models(X, y, folds, make_model)
    logits = nb.fold_logits(models, X, folds)
    for fold in range(3):
        rows = folds == fold
        np.testing.assert_allclose(logits[rows], make_model().fit(X[~rows], y[~rows]).decision_function(X[rows]))
        assert not np.allclose(logits[rows], models[(fold + 1) % 3].decision_function(X[rows]))
    np.testing.assert_array_equal(nb.out_of_fold_logits(X, y, folds, make_model), logits)
    model = nb.calibrate(nb.LogisticModel(5, l2=1e-2).fit(X, y), X, logits, y)
    slope, intercept = nb.platt_scaling(logits, y)
    assert model.calibration == (slope, intercept)
    assert model.threshold == nb.choose_threshold(y, nb.sigmoid(slope * logits + intercept))


def test_brier_score_and_reliability_match_sklearn(nb):
    rng = np.random.default_rng(3)
    p = rng.random(500)
    y = (rng.random(500) < p ** 2).astype(int)
    assert nb.brier_score(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    table = nb.reliability(y, p, n_bins=10)
    share, mean_p = calibration_curve(y, p, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(table.share_fake, share)
    np.testing.assert_allclose(table.mean_p_fake, mean_p)
    assert table.images.sum() == 500


def test_the_model_file_keeps_the_calibration_and_the_class_means(nb, model, tmp_path):
    model, X, y = model
    model = copy.copy(model)  # the fixture's model stays as fitted
    np.testing.assert_allclose(model.class_means_, [X[y == 0].mean(axis=0), X[y == 1].mean(axis=0)], rtol=1e-6)
    model.calibration, model.threshold = (0.8, -0.1), 0.45
    model.export_model(tmp_path / "m.npy")
    loaded = nb.LogisticModel.import_model(tmp_path / "m.npy")
    assert loaded.calibration == (0.8, -0.1)
    np.testing.assert_array_equal(loaded.class_means_, model.class_means_)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_allclose(loaded.predict_proba(X), nb.sigmoid(0.8 * model.decision_function(X) - 0.1))
