"""Hand-written metrics against scikit-learn's."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics

matplotlib.use("Agg")


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.round(np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1), 1)  # rounding makes ties
    return y, p


def test_auc_with_ties_matches_sklearn(nb, scores):
    y, p = scores
    assert nb.roc_auc(y, p) == pytest.approx(metrics.roc_auc_score(y, p), abs=1e-12)


def test_roc_curve_matches_sklearn(nb, scores):
    y, p = scores
    fpr, tpr = nb.roc_curve(y, p)
    ref_fpr, ref_tpr, _ = metrics.roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)


def test_confusion_and_scores_match_sklearn(nb, scores):
    y, p = scores
    predicted = p >= 0.5
    np.testing.assert_array_equal(nb.confusion_matrix(y, predicted), metrics.confusion_matrix(y, predicted))
    result = nb.classification_metrics(y, p, 0.5)
    assert result["accuracy"] == pytest.approx(metrics.accuracy_score(y, predicted))
    assert result["precision"] == pytest.approx(metrics.precision_score(y, predicted))
    assert result["recall"] == pytest.approx(metrics.recall_score(y, predicted))
    assert result["f1"] == pytest.approx(metrics.f1_score(y, predicted))


@pytest.mark.parametrize(("correct", "n"), [(0, 20), (1, 29), (15, 148), (81, 263), (136, 137), (137, 137)])
def test_the_accuracy_interval_is_wilsons_as_scipy_computes_it(nb, correct, n):
    expected = stats.binomtest(correct, n).proportion_ci(0.95, method="wilson")
    assert nb.wilson_interval(correct / n, n) == pytest.approx((expected.low, expected.high), abs=1e-6)


def test_every_condition_has_its_accuracy_inside_its_interval(nb, scores):
    y, p = scores
    table = nb.condition_table({"original": p, "half scored": np.where(np.arange(len(p)) % 2, p, np.nan)}, y, 0.5)
    assert (table.accuracy_low < table.accuracy).all() and (table.accuracy < table.accuracy_high).all()
    low, high = nb.wilson_interval(table.accuracy["half scored"], 150)
    assert table.loc["half scored", ["accuracy_low", "accuracy_high"]].tolist() == [low, high]


def test_threshold_maximises_validation_accuracy(nb):
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.8, 0.9])
    threshold = nb.choose_threshold(y, p)
    assert np.mean((p >= threshold) == y) == 1.0
    assert threshold == 0.35


def test_stratified_split_and_folds_are_balanced_and_seeded(nb):
    groups = np.repeat(["a", "b", "c"], [40, 20, 8])
    held_out = nb.stratified_split(groups, 0.25, seed=3)
    assert [held_out[groups == g].sum() for g in "abc"] == [10, 5, 2]
    np.testing.assert_array_equal(held_out, nb.stratified_split(groups, 0.25, seed=3))
    folds = nb.stratified_folds(groups, 4, seed=3)
    for g in "abc":
        counts = np.bincount(folds[groups == g], minlength=4)
        assert counts.max() - counts.min() <= 1


def sources_table():
    rows = [("photo-a", 0, "a"), ("gan-1", 1, "a"), ("gan-2", 1, "a"), ("photo-b", 0, "b"), ("gan-3", 1, "b"),
            ("photo-c", 0, "c"), ("gan-4", 1, "c")]
    return pd.DataFrame([(f"{source}/{i}.png", label, source, pipeline)
                         for source, label, pipeline in rows for i in range(3)],
                        columns=["path", "label", "source", "pipeline"])


def test_a_table_by_source_names_each_source_with_its_number_of_images(nb):
    labelled = sources_table()
    p = np.where(labelled.label == 1, 0.9, 0.1)
    p[[0, 3]] = [0.8, 0.4]  # one photograph of photo-a called fake, one gan-1 fake called real
    p_unscored = np.where(labelled.source == "gan-4", np.nan, p)
    table = nb.table_by({"original": p, "jpeg75": p_unscored}, labelled, "source", "accuracy")
    assert table.index.name == "source"
    assert list(table.index) == ["gan-1 (3)", "gan-2 (3)", "gan-3 (3)", "gan-4 (3)", "photo-a (3)", "photo-b (3)",
                                 "photo-c (3)"]
    assert table.loc["photo-a (3)", "original"] == pytest.approx(2 / 3)
    assert table.loc["gan-1 (3)", "jpeg75"] == pytest.approx(2 / 3)
    assert np.isnan(table.loc["gan-4 (3)", "jpeg75"]) and table.loc["gan-4 (3)", "original"] == 1


def test_a_fake_source_is_held_out_with_the_photographs_that_pair_with_it(nb):
    labelled = sources_table()
    trains = (labelled.pipeline != "c").to_numpy()
    holdouts = nb.held_out_sources(labelled, trains)
    assert list(holdouts) == ["gan-1", "gan-2", "gan-3", "gan-4"]
    assert sorted(set(labelled.source[holdouts["gan-1"]])) == ["gan-1", "photo-a"]
    photo_a = (labelled.source == "photo-a").to_numpy()
    first, second = (holdouts[source] & photo_a for source in ("gan-1", "gan-2"))
    assert first.any() and second.any() and not (first & second).any()  # pipeline a's two generators share
    np.testing.assert_array_equal(first | second, photo_a)  # its photographs, every one of them once
    lone = labelled.source.isin(["gan-4", "photo-c"]).to_numpy()  # c's only generator takes all of c's photographs
    np.testing.assert_array_equal(holdouts["gan-4"], lone)
    only_b = (labelled.pipeline == "b").to_numpy()  # holding out b's photographs leaves no real image
    assert list(nb.held_out_sources(labelled, only_b)) == ["gan-1", "gan-2", "gan-4"]


def test_photographs_are_dealt_out_in_proportion_to_the_generators_sizes(nb):
    counts = [("photo", 0, "p", 60), ("camera", 0, "p", 30), ("big", 1, "p", 40), ("small", 1, "p", 20),
              ("alone", 1, "q", 5), ("unpaired", 0, "r", 4)]
    labelled = pd.DataFrame([(f"{source}/{i}.png", label, source, pipeline)
                             for source, label, pipeline, n in counts for i in range(n)],
                            columns=["path", "label", "source", "pipeline"])
    paired = nb.paired_fake_sources(labelled, seed=1)
    for source, expected in (("photo", {"big": 40, "small": 20}), ("camera", {"big": 20, "small": 10})):
        assert pd.Series(paired[labelled.source == source]).value_counts().to_dict() == expected
    assert (paired[labelled.label == 1] == "").all() and (paired[labelled.source == "unpaired"] == "").all()
    np.testing.assert_array_equal(paired, nb.paired_fake_sources(labelled, seed=1))
    assert not np.array_equal(paired, nb.paired_fake_sources(labelled, seed=2))


def test_holdout_table_counts_caught_fakes_and_kept_photographs(nb):
    labelled = sources_table()
    inside = nb.held_out_sources(labelled, np.ones(len(labelled), bool))["gan-3"]
    y = labelled.label.to_numpy()
    p = np.where(inside, np.where(y == 1, [0.9, 0.8, 0.2] * 7, [0.1, 0.7, 0.3] * 7), np.nan)
    table = nb.holdout_table({"gan-3": {"original": p}}, labelled)
    assert table.loc[("gan-3", "fakes caught"), "original"] == pytest.approx(2 / 3)
    assert table.loc[("gan-3", "photographs kept"), "original"] == pytest.approx(2 / 3)
    assert table.loc[("gan-3", "auc"), "original"] == pytest.approx(metrics.roc_auc_score(y[inside], p[inside]))


@pytest.mark.filterwarnings("ignore:The set_bad function:PendingDeprecationWarning")  # inside seaborn
def test_the_map_shows_each_sources_value_per_condition(nb):
    labelled = sources_table()
    y = labelled.label.to_numpy()
    holdouts = nb.held_out_sources(labelled, np.ones(len(labelled), bool))
    rng = np.random.default_rng(0)
    p_by_source = {source: {c: np.where(inside, rng.random(len(y)), np.nan) for c in ("original", "jpeg75")}
                   for source, inside in holdouts.items()}
    auc = nb.holdout_table(p_by_source, labelled).xs("auc", level="measure")
    fig, ax = plt.subplots()
    nb.plot_condition_map(ax, auc, "AUC", "held out")
    assert [label.get_text() for label in ax.get_yticklabels()] == list(holdouts)
    assert [label.get_text() for label in ax.get_xticklabels()] == ["original", "jpeg75"]
    assert ax.get_ylabel() == "held out"
    np.testing.assert_allclose([float(text.get_text()) for text in ax.texts], auc.to_numpy().ravel(), atol=0.005)
    plt.close(fig)
