"""Two models by image size (section 7.2): which rows are small, who fits them, who scores them."""

import numpy as np
import pytest
from conftest import noise_image

OPTIONS = {"quadratic": True, "l2": 1e-2, "iterations": 300, "learning_rate": 0.1}  # of every fit below


def band_columns(nb, settings):
    """The feature columns of the largest band."""
    return (nb.feature_columns(settings).band == str(max(settings["bands"]))).to_numpy()


@pytest.mark.parametrize("height, width", [(512, 512), (600, 600), (670, 671), (671, 671), (672, 672),
                                           (700, 700), (768, 768), (1024, 1024), (300, 1024)])
def test_a_row_tells_whether_its_image_is_under_672_pixels(nb, height, width):
    settings = nb.feature_settings()
    grey = noise_image(max(height, width), seed=height, channels=1)[:height, :width]
    small = nb.small_image_rows(nb.image_features(grey, settings)[None, :], settings)
    assert small.tolist() == [min(height, width) < 672]


def test_no_bands_or_no_settings_mean_no_small_rows(nb):
    settings = nb.feature_settings(bands=())
    X = np.zeros((3, len(nb.feature_names(settings))), np.float32)
    assert not nb.small_image_rows(X, settings).any() and not nb.small_image_rows(X, None).any()


@pytest.fixture(scope="module")
def rows(nb):
    """Feature rows, a third of them of small images, whose classes differ by other columns."""
    rng = np.random.default_rng(0)
    settings = nb.feature_settings()
    X = rng.normal(size=(300, len(nb.feature_names(settings)))).astype(np.float32)
    small = np.arange(300) % 3 == 0
    X[small, np.flatnonzero(band_columns(nb, settings))[-1]] = 0
    y = np.where(small, X[:, 5] > 0, X[:, 7] - X[:, 60] > 0).astype(int)
    return settings, X, y, small


def split_model(nb, settings, X, y, split=True):
    return nb.LogisticModel(X.shape[1], settings, split_by_size=split, **OPTIONS).fit(X, y)


def test_each_model_is_fitted_on_the_rows_of_its_size_alone(nb, rows):
    settings, X, y, small = rows
    model = split_model(nb, settings, X, y)
    no_colour = (nb.feature_columns(settings).family != "colour").to_numpy()
    alone = {size: nb.LogisticRegression(X.shape[1], **OPTIONS).fit(X[rows], y[rows], usable)
             for size, rows, usable in (("small", small, None), ("large", ~small, no_colour))}
    np.testing.assert_array_equal(model.small_model.wm, alone["small"].wm)
    np.testing.assert_array_equal(model.wm, alone["large"].wm)
    logits = model.decision_function(X)
    np.testing.assert_array_equal(logits[small], alone["small"].decision_function(X[small]))
    np.testing.assert_array_equal(logits[~small], alone["large"].decision_function(X[~small]))
    assert ((model.predict_proba(X) >= 0.5) == y).mean() > 0.9  # each size's own rule is learnt


def test_one_model_without_the_split_or_without_both_classes_in_a_size(nb, rows):
    settings, X, y, small = rows
    assert split_model(nb, settings, X, y, split=False).small_model is None
    one_class = np.where(small, 1, y)
    model = split_model(nb, settings, X, one_class)
    assert model.small_model is None
    whole = nb.LogisticRegression(X.shape[1], **OPTIONS)
    np.testing.assert_array_equal(model.decision_function(X), whole.fit(X, one_class).decision_function(X))


def test_a_split_model_survives_its_file_and_explains_each_row_by_its_model(nb, rows, tmp_path):
    settings, X, y, small = rows
    model = split_model(nb, settings, X, y)
    model.export_model(tmp_path / "m.npy")
    loaded = nb.LogisticModel.import_model(tmp_path / "m.npy")
    assert loaded.small_model is not None and loaded.split_by_size
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    terms = nb.logit_terms(loaded, X[:30])
    np.testing.assert_allclose(terms.sum(axis=1), model.decision_function(X[:30]), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(terms.bias, np.where(small[:30], model.small_model.wm[0], model.wm[0]))


def test_each_model_is_calibrated_and_thresholded_on_its_own_rows(nb, rows, tmp_path):
    settings, X, y, small = rows
    folds = np.arange(len(y)) % 3
    make = lambda: nb.LogisticModel(X.shape[1], settings, split_by_size=True, **OPTIONS)  # noqa: E731
    logits = nb.out_of_fold_logits(X, y, folds, make)
    model = nb.calibrate(make().fit(X, y), X, logits, y)
    for learner, rows_of_size in ((model, ~small), (model.small_model, small)):
        z, truth = logits[rows_of_size], y[rows_of_size]
        slope, intercept = nb.platt_scaling(z, truth)
        assert learner.calibration == (slope, intercept)
        assert learner.threshold == nb.choose_threshold(truth, nb.sigmoid(slope * z + intercept))
    assert model.calibration != model.small_model.calibration
    p_fake, thresholds = model.predict_proba(X), model.thresholds(X)
    np.testing.assert_allclose(p_fake[small], model.small_model.predict_proba(X[small]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(thresholds, np.where(small, model.small_model.threshold, model.threshold))
    large_alone = nb.LogisticRegression(X.shape[1], **OPTIONS)  # a large row's answer owes nothing to the small model
    large_alone.w_vector, large_alone.mean_, large_alone.scale_ = model.w_vector, model.mean_, model.scale_
    large_alone.calibration = model.calibration
    np.testing.assert_array_equal(p_fake[~small], large_alone.predict_proba(X[~small]))
    model.export_model(tmp_path / "m.npy")
    loaded = nb.LogisticModel.import_model(tmp_path / "m.npy")
    assert loaded.small_model.calibration == model.small_model.calibration
    np.testing.assert_array_equal(loaded.thresholds(X), thresholds)
    np.testing.assert_array_equal(loaded.predict_proba(X), p_fake)


def test_a_damaged_small_model_is_refused(nb, rows, tmp_path):
    settings, X, y, _ = rows
    split_model(nb, settings, X, y).export_model(tmp_path / "good.npy")
    record = np.load(tmp_path / "good.npy", allow_pickle=False)
    for field, value, message in [("small_theta", np.nan, "holds damaged numbers"),
                                  ("small_scale", 0.0, "holds damaged numbers"),
                                  ("small_calibration", -1.0, "holds damaged numbers"),
                                  ("small_threshold", 1.0, "is 1.0, not between 0 and 1")]:
        bad = record.copy()
        if bad[field].shape:
            bad[field][0] = value
        else:
            bad[field] = value
        np.save(tmp_path / f"{field}.npy", bad)
        with pytest.raises(nb.ModelFileError, match=f"{field}.npy: field {field} {message}"):
            nb.LogisticModel.import_model(tmp_path / f"{field}.npy")


def test_the_views_of_large_images_train_the_large_model_at_every_size(nb, rows):
    settings, X, y, small = rows
    small_images = small & (np.arange(len(y)) % 2 == 0)  # the other small rows are views of large images
    model = nb.LogisticModel(X.shape[1], settings, split_by_size=True, **OPTIONS).fit(X, y, small_images)
    no_colour = (nb.feature_columns(settings).family != "colour").to_numpy()
    np.testing.assert_array_equal(model.wm, nb.LogisticRegression(X.shape[1], **OPTIONS)
                                  .fit(X[~small_images], y[~small_images], no_colour).wm)
    np.testing.assert_array_equal(model.small_model.wm, nb.LogisticRegression(X.shape[1], **OPTIONS)
                                  .fit(X[small], y[small]).wm)


def test_the_search_scores_each_row_with_the_model_of_its_size(nb, rows):
    settings, X, y, small = rows
    folds = np.arange(len(y)) // 7 % 3
    make = lambda rate, l2: nb.LogisticModel(X.shape[1], settings, split_by_size=True, quadratic=True, l2=l2,  # noqa: E731
                                             iterations=100, learning_rate=rate, tol=0.0, record_every=25)
    curves = nb.validation_curves(X, y, folds, [0.1], [1e-2], make)
    model = make(0.1, 1e-2).fit(X[folds != 0], y[folds != 0])
    assert model.small_model is not None
    history = nb.logit_history(model, X[folds == 0])
    np.testing.assert_allclose(history[:, -1], model.decision_function(X[folds == 0]), rtol=0, atol=1e-9)
    last = curves[curves.fold == 0].val_loss.iloc[-1]
    assert last == pytest.approx(nb.log_loss(model.decision_function(X[folds == 0]), y[folds == 0]), rel=1e-12)


def test_the_colour_cues_are_the_small_models_alone(nb, rows):
    settings, X, y, small = rows
    colour = np.tile((nb.feature_columns(settings).family == "colour").to_numpy(), 2)  # z-scores and squares
    subsets = nb.family_subsets(settings)
    model = nb.LogisticModel(X.shape[1], settings, split_by_size=True, subsets=subsets, **OPTIONS).fit(X, y)
    assert (model.wm[1:][colour] == 0).all() and (model.wm[1:][~colour] != 0).all()
    assert (model.small_model.wm[1:][colour] != 0).all()
    one = nb.LogisticModel(X.shape[1], settings, split_by_size=False, subsets=subsets, **OPTIONS).fit(X, y)
    assert (one.wm[1:][colour] != 0).all()  # a model of every size may use them


def test_restricted_subsets_cut_every_subset_and_drop_the_empty_ones(nb):
    subsets = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1]], bool)
    usable = np.array([1, 1, 0, 0], bool)
    assert [m.tolist() for m in nb.restricted_subsets(subsets, usable)] == [[1, 1, 0, 0], [1, 1, 0, 0]]
    assert [m.tolist() for m in nb.restricted_subsets(None, usable)] == [[1, 1, 0, 0]]
    assert nb.restricted_subsets(subsets, None) is subsets and nb.restricted_subsets(None, None) is None
