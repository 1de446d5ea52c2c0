"""LogisticModel: export/import, refusal of bad model files, determinism, test() -> CSV, and the shipped
model's indifference to how a photograph was saved."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, shared_study_photographs


@pytest.fixture
def trained(nb):
    rng = np.random.default_rng(0)
    settings = nb.feature_settings("both")
    d = len(nb.feature_names(settings))
    X = rng.normal(size=(120, d)).astype(np.float32)
    y = (X[:, 0] - X[:, 40] + rng.normal(size=120) > 0).astype(int)
    model = nb.LogisticModel(d, settings, iterations=300, l2=1e-2, threshold=0.4).fit(X, y)
    return model, X


@pytest.mark.parametrize("quadratic", [False, True])
def test_export_import_round_trip_predicts_the_same(nb, trained, tmp_path, quadratic):
    model, X = trained
    if quadratic:
        model = nb.LogisticModel(X.shape[1], model.settings, iterations=300, l2=1e-2, threshold=0.4,
                                 quadratic=True).fit(X, model.predict(X))
    model.export_model(tmp_path / "m.npy")
    loaded = nb.LogisticModel.import_model(tmp_path / "m.npy")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.threshold == 0.4 and loaded.settings == model.settings and loaded.trained
    assert loaded.quadratic == quadratic and loaded.wm.size == X.shape[1] * (1 + quadratic) + 1
    np.testing.assert_array_equal(loaded.wm, model.wm)


def test_model_file_is_a_plain_structured_array(nb, trained, tmp_path):
    trained[0].export_model(tmp_path / "m.npy")
    record = np.load(tmp_path / "m.npy", allow_pickle=False)
    assert record.dtype.names is not None and not record.dtype.hasobject
    assert record["format"] == nb.MODEL_FORMAT and record["version"] == nb.MODEL_VERSION


def test_same_seed_same_data_gives_a_byte_identical_file(nb, trained, tmp_path):
    model, X = trained
    y = model.predict(X)
    for name in ("a.npy", "b.npy"):
        again = nb.LogisticModel(X.shape[1], model.settings, iterations=300, l2=1e-2).fit(X, y)
        again.export_model(tmp_path / name)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


def damaged_files(nb, good, tmp_path):
    """(file, expected message) pairs for every way a model file can be wrong."""
    record = np.load(good, allow_pickle=False)
    cases = {"missing.npy": "not found"}
    (tmp_path / "truncated.npy").write_bytes(good.read_bytes()[:200])
    cases["truncated.npy"] = "not a readable"
    (tmp_path / "text.npy").write_text("hello")
    cases["text.npy"] = "not a readable"
    np.save(tmp_path / "pickled.npy", np.array([{"theta": 1}], dtype=object), allow_pickle=True)
    cases["pickled.npy"] = "not a DeepFakeLogReg model"
    np.savez(tmp_path / "archive.npz", record=record)
    (tmp_path / "archive.npz").rename(tmp_path / "archive.npy")
    cases["archive.npy"] = "not a readable .npy model"
    with open(tmp_path / "huge.npy", "wb") as handle:  # 200 bytes that claim 10^11 numbers
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)})
    cases["huge.npy"] = "not a DeepFakeLogReg model"
    fields = [(name, record.dtype[name]) for name in record.dtype.names]
    for name, kind, message in [("theta", "<U8", "field types \\(theta\\)"), ("version", "<U1", "field version"),
                                ("mean", ("<f8", (5,)), "lengths of theta, mean, scale, class_means")]:
        changed = np.zeros((), [(field, kind if field == name else dtype) for field, dtype in fields])
        for field in record.dtype.names:
            if field != name:
                changed[field] = record[field]
        changed[name] = "2" if name == "version" else changed[name]
        np.save(tmp_path / f"{name}_type.npy", changed)
        cases[f"{name}_type.npy"] = message
    settings = json.loads(str(record["settings"]))
    for key, value in [("radial_bins", 30_000_000), ("residual_quantum", 0), ("kind", "fancy"), ("dct_period", 12)]:
        bad = record.copy()
        bad["settings"] = json.dumps({**settings, key: value})
        np.save(tmp_path / f"{key}.npy", bad)
        cases[f"{key}.npy"] = f"damaged feature settings .*{key}"
    for value in (7.0, -1.0, 0.0):
        bad = record.copy()
        bad["threshold"] = value
        np.save(tmp_path / f"threshold_{value}.npy", bad)
        cases[f"threshold_{value}.npy"] = "field threshold .* not between 0 and 1"
    np.save(tmp_path / "plain.npy", np.zeros(10))
    cases["plain.npy"] = "not a DeepFakeLogReg model"
    for field, value, message in [("version", 99, "version 99"), ("format", "Other", "not a DeepFakeLogReg"),
                                  ("settings", "{broken", "damaged feature settings")]:
        bad = record.copy()
        bad[field] = value
        np.save(tmp_path / f"{field}.npy", bad)
        cases[f"{field}.npy"] = message
    older = record.copy()
    older["settings"] = json.dumps({**json.loads(str(record["settings"])), "format": nb.FEATURE_FORMAT - 1})
    np.save(tmp_path / "older.npy", older)
    cases["older.npy"] = f"features of format {nb.FEATURE_FORMAT - 1}, .* retrain"
    # version 1: the linear models before the squares; 2: before the demo flag; 3: before calibration;
    # 4: before the small images' model; 5: before its own threshold and calibration
    small_fields = ("small", "small_theta", "small_mean", "small_scale", "small_threshold", "small_calibration")
    older_fields = {1: ("quadratic", *small_fields), 2: ("demo", "calibration", "class_means", *small_fields),
                    3: ("calibration", "class_means", *small_fields), 4: small_fields, 5: small_fields[4:]}
    for version, missing in older_fields.items():
        old = np.zeros((), [(name, record.dtype[name]) for name in record.dtype.names if name not in missing])
        for name in old.dtype.names:
            old[name] = record[name]
        old["version"] = version
        np.save(tmp_path / f"version_{version}.npy", old)
        cases[f"version_{version}.npy"] = f"format version {version}, this notebook reads version 6; retrain"
    for field, value, message in [("calibration", (-1.0, 0.0), "field calibration"),
                                  ("class_means", np.nan, "field class_means")]:
        bad = record.copy()
        bad[field] = value
        np.save(tmp_path / f"{field}_value.npy", bad)
        cases[f"{field}_value.npy"] = message
    extra = np.zeros((), record.dtype.descr + [("comment", "U8")])
    for name in record.dtype.names:
        extra[name] = record[name]
    np.save(tmp_path / "extra.npy", extra)
    cases["extra.npy"] = "unexpected fields or field types \\(comment\\)"
    squared = record.copy()
    squared["quadratic"] = True  # a linear model's coefficients, but the file says it squares
    np.save(tmp_path / "squared.npy", squared)
    n_features = len(nb.feature_names(nb.feature_settings()))
    cases["squared.npy"] = f"field theta has {n_features} coefficients for {2 * n_features} columns"
    bad = record.copy()
    bad["theta"][3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    cases["nan.npy"] = "field theta holds damaged numbers"
    return cases


def test_bad_model_files_are_refused_with_their_name(nb, trained, tmp_path):
    trained[0].export_model(tmp_path / "good.npy")
    for name, message in damaged_files(nb, tmp_path / "good.npy", tmp_path).items():
        with pytest.raises(nb.ModelFileError, match=message) as raised:
            nb.LogisticModel.import_model(tmp_path / name)
        assert name in str(raised.value)


def test_test_writes_one_row_per_image_and_reports_bad_files(nb, trained, image_folder, tmp_path):
    model = trained[0]
    csv = tmp_path / "out" / "labels.csv"
    table = model.test(image_folder, csv, n_jobs=2, cache_dir="")
    written = pd.read_csv(csv, keep_default_na=False)
    assert list(written.columns) == ["filename", "label", "p_fake", "error"]
    assert list(written.filename) == ["a_good.jpg", "c_truncated.jpg", "d_text.png", "e_empty.jpg",
                                      "nested/b_good.PNG", "notes.txt"]
    assert list(written.label[[1, 2, 3, 5]]) == ["Error"] * 4
    assert set(written.label[[0, 4]]) <= {"Real", "Fake"}
    assert all(written.p_fake[[1, 2, 3, 5]] == "")
    assert all(0 <= float(p) <= 1 for p in written.p_fake[[0, 4]])
    assert "truncated" in written.error[1] and written.error[3] == "empty file"
    assert written.error[5].startswith("not a readable image")
    assert written.error[0] == "" and written.error[4] == ""
    assert list(table.filename) == list(written.filename)
    assert [p.name for p in csv.parent.iterdir()] == ["labels.csv"]


def test_labels_follow_the_threshold(nb, trained, image_folder, tmp_path):
    model = trained[0]
    table = model.test(image_folder, tmp_path / "labels.csv", n_jobs=1, cache_dir="")
    good = table.label != "Error"
    expected = np.where(table.p_fake[good] >= model.threshold, "Fake", "Real")
    assert list(table.label[good]) == list(expected)


def test_an_empty_model_says_it_is_untrained(nb, image_folder, tmp_path, capsys):
    settings = nb.feature_settings()
    empty = nb.LogisticModel(len(nb.feature_names(settings)), settings)
    table = empty.test(image_folder, tmp_path / "labels.csv", n_jobs=1, cache_dir="")
    assert "UNTRAINED" in capsys.readouterr().out
    assert set(table.p_fake.dropna()) == {0.5}


def test_a_missing_future_folder_is_a_clear_error(nb, tmp_path):
    with pytest.raises(ValueError, match="FUTURE_DIR .*nowhere: no such folder"):
        nb.LogisticModel(1).test(tmp_path / "nowhere", tmp_path / "labels.csv")


def test_a_model_needs_only_its_column_count(nb):
    model = nb.LogisticModel(3)
    assert not model.trained and model.settings is None
    np.testing.assert_array_equal(model.predict_proba(np.ones((2, 3))), [0.5, 0.5])
    assert nb.LogisticModel(3, quadratic=True).wm.shape == (7,)


def test_the_shipped_model_does_not_read_a_photographs_jpeg_history(nb):
    """The study's photographs (JPEG 95) saved again at 90, with and without a save at 75 between.
    A model that read how a file was saved would call one history fake and the other real, as a
    model of the block DCT's first digits does (EXPERIMENTS.md, Benford's law)."""
    model = nb.LogisticModel.import_model(REPO / "model.npy")
    histories = ["jpeg90", "jpeg75+jpeg90"]
    X = np.stack([nb.file_features((str(path), [0, 1], histories, model.settings, None))[2]
                  for path in shared_study_photographs()[:24]])  # (photograph, history, feature)
    once, twice = model.predict(X[:, 0]), model.predict(X[:, 1])
    assert once.mean() <= 0.1
    assert np.sum(once != twice) <= 2
