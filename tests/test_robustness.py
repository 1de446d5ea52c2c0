"""Nothing a user feeds the notebook loses the batch or fools it silently: files, folders, the cache."""

import json
import math
import os
import signal
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import noise_image


def png_claiming(width, height):
    """A small PNG whose header claims `width` x `height` grey pixels (its data is one empty row)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def cut_jpeg_with_end_marker(seed=3):
    """A JPEG cut to a third of its bytes, with an end-of-image marker appended."""
    image = cv2.GaussianBlur(noise_image(256, seed=seed), (5, 5), 2)
    raw = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    return raw[: len(raw) // 3] + b"\xff\xd9"


def adversarial_folder(folder):
    """Files and entries of every awkward kind, and the reason each should give (None: classified)."""
    folder.mkdir(parents=True, exist_ok=True)
    face = cv2.GaussianBlur(noise_image(160, seed=5), (3, 3), 1)
    cases = {}
    for name, extension in [("good", ".jpg"), ("good_gif", ".gif"), ("good_jfif", ".jfif"), ("no_extension", ""),
                            ("good_tiff", ".tif"), ("good_webp", ".webp")]:
        raw = cv2.imencode(".jpg" if extension in ("", ".jfif") else extension, face)[1].tobytes()
        (folder / f"{name}{extension}").write_bytes(raw)
        cases[f"{name}{extension}"] = None
    bad_name = os.fsdecode(b"bad\xff.jpg")  # not UTF-8 (OpenCV crashes on such a name; the notebook never passes one)
    (folder / bad_name).write_bytes(cv2.imencode(".jpg", face)[1].tobytes())
    cases[bad_name] = None
    nan_tiff = np.full((80, 80), 0.5, np.float32)
    nan_tiff[3, 4] = np.nan
    cv2.imwrite(str(folder / "nan.tif"), nan_tiff)
    cases["nan.tif"] = "not finite"
    (folder / "cut.jpg").write_bytes(cut_jpeg_with_end_marker())
    cases["cut.jpg"] = "damaged JPEG"
    (folder / "huge.png").write_bytes(png_claiming(20000, 20000))
    cases["huge.png"] = "too large (20000x20000 pixels"
    (folder / "broken_link.jpg").symlink_to(folder / "nowhere.jpg")
    cases["broken_link.jpg"] = "a link that leads nowhere"
    (folder / "self_link.jpg").symlink_to(folder / "self_link.jpg")
    cases["self_link.jpg"] = "a link that leads nowhere"
    (folder / "sub").mkdir()
    (folder / "sub" / "loop").symlink_to(folder)
    cases["sub/loop"] = "a link to a folder already listed"
    os.mkfifo(folder / "pipe.jpg")
    cases["pipe.jpg"] = "not a regular file"
    (folder / "notes.txt").write_text("hello")
    cases["notes.txt"] = "not a readable image"
    (folder / ".hidden.jpg").write_bytes(b"hidden files are left out")
    return cases


def test_every_entry_of_an_awkward_folder_gets_exactly_one_row(nb, tmp_path):
    cases = adversarial_folder(tmp_path / "future")
    model = nb.LogisticModel.import_model(nb.Path(__file__).resolve().parent.parent / "model.npy")
    table = nb.classify_folder(model, tmp_path / "future", n_jobs=2)
    assert sorted(table.filename) == sorted(cases) and table.filename.is_unique
    for row in table.itertuples():
        expected = cases[row.filename]
        if expected is None:
            assert row.label in ("Real", "Fake") and row.error == "", row
        else:
            assert row.label == "Error" and expected in row.error and np.isnan(row.p_fake), row


def test_names_that_are_not_utf8_are_written_as_their_bytes_and_read_back(nb, tmp_path):
    folder = tmp_path / "future"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1, not UTF-8
    (folder / name).write_bytes(cv2.imencode(".jpg", noise_image(100))[1].tobytes())
    settings = nb.feature_settings()
    model = nb.LogisticModel(len(nb.feature_names(settings)), settings)
    table = model.test(folder, tmp_path / "labels.csv", n_jobs=1)
    written = pd.read_csv(tmp_path / "labels.csv", encoding_errors="surrogateescape")
    assert list(written.filename) == [name] == list(table.filename) and (folder / written.filename[0]).exists()
    assert b"caf\xe9.jpg" in (tmp_path / "labels.csv").read_bytes()
    assert nb.printable(name) == "caf\\xe9.jpg"


def test_an_unreadable_subfolder_gets_a_row_and_the_rest_are_listed(nb, tmp_path, monkeypatch):
    (tmp_path / "locked").mkdir()
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "a.jpg").write_bytes(b"x")
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(nb.os, "scandir", scandir)
    files, problems = nb.list_files(tmp_path)
    assert files == [tmp_path / "open" / "a.jpg"]
    assert problems == {tmp_path / "locked": "cannot read this folder (Permission denied)"}
    with pytest.raises(ValueError, match="cannot read this folder"):
        nb.check_folder("FUTURE_DIR", tmp_path / "locked")


def test_a_huge_image_is_refused_from_its_header_before_decoding(nb, monkeypatch):
    monkeypatch.setattr(nb.cv2, "imdecode", lambda *args: pytest.fail("decoded a 400-megapixel image"))
    with pytest.raises(nb.ImageError, match="too large"):
        nb.decode_image(png_claiming(20000, 20000))
    jpeg = bytearray(cv2.imencode(".jpg", noise_image(100))[1].tobytes())
    frame = jpeg.index(b"\xff\xc0")
    jpeg[frame + 5:frame + 9] = struct.pack(">HH", 30000, 30000)
    with pytest.raises(nb.ImageError, match="30000x30000"):
        nb.decode_image(bytes(jpeg))


@pytest.mark.parametrize("extension", [".jpg", ".png", ".gif", ".bmp", ".tif", ".webp", ".ppm"])
def test_the_header_gives_every_formats_size(nb, extension):
    image = noise_image(64)[:48, :, :]  # 64 wide, 48 high
    raw = cv2.imencode(extension, image)[1].tobytes()
    assert nb.image_size(raw) == (64, 48)


def test_a_large_file_is_not_read(nb, tmp_path, monkeypatch):
    monkeypatch.setattr(nb, "MAX_FILE_BYTES", 100)
    (tmp_path / "big.jpg").write_bytes(b"\xff\xd8" + bytes(200))
    with pytest.raises(nb.ImageError, match="file too large"):
        nb.read_image(tmp_path / "big.jpg")


def test_a_jpeg_cut_short_is_an_error_even_with_an_end_marker(nb):
    with pytest.raises(nb.ImageError, match="damaged JPEG .*premature end"):
        nb.decode_image(cut_jpeg_with_end_marker())


@pytest.mark.parametrize("n_files", [8, 40], ids=["one file per trip", "four files per trip"])
def test_a_worker_that_dies_costs_only_its_own_file(nb, tmp_path, monkeypatch, n_files):
    paths = [str(tmp_path / f"{i}.png") for i in range(n_files)]
    for i, path in enumerate(paths):
        cv2.imwrite(path, noise_image(96, seed=i))
    serial, _ = nb.extract_features(paths, n_jobs=1)
    real_read = nb.read_file_bytes

    def read_file_bytes(path):
        if Path(path).name == "3.png":  # this file kills whatever process reads it
            os.kill(os.getpid(), signal.SIGKILL)
        if Path(path).name == "5.png" and not (tmp_path / "killed_once").exists():  # an accident, once
            (tmp_path / "killed_once").touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_read(path)

    monkeypatch.setattr(nb, "read_file_bytes", read_file_bytes)
    X, errors = nb.extract_features(paths, n_jobs=2)
    assert errors == {paths[3]: "the process reading this file died (out of memory, or killed)"}
    rows = np.arange(n_files) != 3
    np.testing.assert_array_equal(X[rows], serial[rows])
    assert np.isnan(X[3]).all() and (tmp_path / "killed_once").exists()


def test_the_cache_never_lies_and_repairs_itself(nb, tmp_path):
    a, b = str(tmp_path / "a.png"), str(tmp_path / "b.png")
    cv2.imwrite(a, noise_image(96, seed=1))
    cv2.imwrite(b, noise_image(96, seed=2))
    cache = tmp_path / "cache"
    fresh, _ = nb.extract_features([a, b], n_jobs=1)
    nb.extract_features([a, b], n_jobs=1, cache_dir=str(cache))
    settings, entries = nb.feature_settings(), {}
    for path in (a, b):
        entries[path] = cache / f"{nb.cache_key(nb.file_digest(path), 'original', settings)}.npy"
    entries[a].write_bytes(entries[b].read_bytes())  # another image's features under a's name
    X, errors = nb.extract_features([a, b], n_jobs=1, cache_dir=str(cache))
    np.testing.assert_array_equal(X, fresh)
    for damage in (b"", entries[a].read_bytes()[:100], None):
        entries[a].unlink()
        entries[a].mkdir() if damage is None else entries[a].write_bytes(damage)
        X, errors = nb.extract_features([a, b], n_jobs=1, cache_dir=str(cache))
        np.testing.assert_array_equal(X, fresh)
        assert not errors
        if damage is not None:  # repaired on the way
            assert nb.load_cache_entry(entries[a], entries[a].stem, X.shape[1]) is not None
        else:
            entries[a].rmdir()


def test_an_image_replaced_in_place_with_the_same_size_and_time_is_read_again(nb, tmp_path):
    path = tmp_path / "x.png"
    cv2.imwrite(str(path), noise_image(96, seed=1))
    stamp = path.stat()
    before, _ = nb.extract_features([path], n_jobs=1, cache_dir=str(tmp_path / "cache"))
    raw = bytearray(path.read_bytes())
    replacement = cv2.imencode(".png", noise_image(96, seed=2))[1].tobytes()
    assert len(replacement) == len(raw)  # noise images of one size compress to the same length
    path.write_bytes(replacement)
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    after, _ = nb.extract_features([path], n_jobs=1, cache_dir=str(tmp_path / "cache"))
    fresh, _ = nb.extract_features([path], n_jobs=1)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, fresh)


def test_a_cache_that_cannot_be_written_costs_only_speed(nb, tmp_path, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    path = str(tmp_path / "x.png")
    cv2.imwrite(path, noise_image(96))
    X, errors = nb.extract_features([path], n_jobs=1, cache_dir=str(tmp_path / "a_file"))
    fresh, _ = nb.extract_features([path], n_jobs=1)
    np.testing.assert_array_equal(X, fresh)
    assert not errors and "cannot write the feature cache" in capsys.readouterr().out


def test_a_forged_npy_header_is_refused_before_anything_is_read(nb, tmp_path):
    dtype = nb.entry_dtype(263)
    header = {"descr": dtype.descr, "fortran_order": False, "shape": (10**11,)}
    forged = tmp_path / "forged.npy"
    with open(forged, "wb") as handle:
        nb.np.lib.format.write_array_header_1_0(handle, header)
    with pytest.raises(ValueError, match="not one record"):
        nb.load_npy_record(forged, dtype)
    assert nb.load_cache_entry(forged, "0" * 64, 263) is None


@pytest.mark.parametrize("check, arguments, message", [
    ("check_number", ("N_JOBS", -1, 0, math.inf, True), "N_JOBS must be an integer from 0 to inf, not -1"),
    ("check_number", ("N_JOBS", 2.5, 0, math.inf, True), "N_JOBS must be an integer"),
    ("check_number", ("TEST_FRACTION", True, 0, 0.9), "TEST_FRACTION must be a number"),
    ("check_choice", ("DEMO", "yes", ("auto", True, False)), "DEMO must be one of 'auto', True, False, not 'yes'"),
    ("check_choice", ("DEMO", 1, ("auto", True, False)), "DEMO must be one of"),
    ("check_grid", ("SEARCH_L2", [], 0), "SEARCH_L2 must be a non-empty list"),
    ("check_grid", ("SEARCH_L2", [1e-3, -1], 0), "SEARCH_L2 must be a number from 0"),
    ("check_weights", ("PIPELINE_WEIGHTS", ["faces"]), "PIPELINE_WEIGHTS must be a dict of names to integers"),
    ("check_weights", ("PIPELINE_WEIGHTS", {"faces": 0}), "PIPELINE_WEIGHTS\\['faces'\\] must be an integer from 1"),
    ("check_weights", ("PIPELINE_WEIGHTS", {"faces": 1.5}), "PIPELINE_WEIGHTS\\['faces'\\] must be an integer"),
    ("check_weights", ("PIPELINE_WEIGHTS", {3: 2}), "PIPELINE_WEIGHTS must be a dict of names"),
])
def test_parameters_are_checked_with_one_clear_message(nb, check, arguments, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        getattr(nb, check)(*arguments)


def test_paths_to_write_and_labelled_sets_are_checked(nb, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="CACHE_DIR .*: a folder is needed here"):
        nb.check_writable("CACHE_DIR", tmp_path / "file", folder=True)
    with pytest.raises(ValueError, match="OUTPUT_CSV .*: a file is needed here"):
        nb.check_writable("OUTPUT_CSV", tmp_path, folder=False)
    with pytest.raises(ValueError, match="cannot be written"):
        nb.check_writable("EXPORT_PATH", tmp_path / "file" / "model.npy")
    nb.check_writable("EXPORT_PATH", tmp_path / "new" / "deeper" / "model.npy")
    only_real = pd.DataFrame({"path": ["a"] * 6, "label": [0] * 6, "source": ["x"] * 6})
    with pytest.raises(ValueError, match="holds 6 real and 0 fake images"):
        nb.check_labelled(only_real, "data", 5)
    with pytest.raises(ValueError, match="no such folder"):
        nb.check_folder("FUTURE_DIR", tmp_path / "missing")


def test_settings_are_bounded(nb):
    good = nb.feature_settings()
    for name, value in [("radial_bins", 30_000_000), ("residual_quantum", 0), ("kind", "fancy"),
                        ("bands", [512, 10**6]), ("band_bins", [8, 12]), ("radial_bins", True), ("grid_rows", 2.5),
                        ("trend_degree", 4), ("trend_degree", -1)]:
        with pytest.raises(ValueError, match=name):
            nb.check_feature_settings({**good, name: value})
    with pytest.raises(ValueError, match="exactly the keys"):
        nb.check_feature_settings({**good, "extra": 1})
    assert json.loads(json.dumps(good)) == good


def test_pictures_of_the_data_skip_files_that_do_not_read(nb, tmp_path):
    """A corrupt file among the labelled images is reported by the extraction; the pictures pass over it."""
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    cv2.imwrite(str(tmp_path / "good.png"), noise_image(96, channels=1))
    paths = [tmp_path / "corrupt.jpg", tmp_path / "good.png"]
    path, image = nb.first_readable(paths)
    assert path == paths[1] and image.shape == (96, 96)
    expected = nb.centred(nb.periodogram_db(nb.to_grey(image)))
    np.testing.assert_array_equal(nb.mean_periodogram(paths, (96, 96)), expected)
    assert np.isnan(nb.jpeg_quality(paths[0])) and np.isnan(nb.jpeg_quality(tmp_path / "missing.jpg"))
    assert nb.first_readable(paths[:1]) is None
