"""The notebook as a user runs it: papermill in "import" mode on a folder with bad files."""

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
from conftest import REPO


def run_notebook(out, yaml=(), **parameters):
    """Execute the notebook with papermill in `out`; returns the executed notebook's text.
    `yaml` holds parameters given as YAML (lists)."""
    papermill = Path(sys.executable).parent / "papermill"
    arguments = [str(papermill), str(REPO / "DeepFakeLogReg.ipynb"), str(out / "executed.ipynb"),
                 "--cwd", str(REPO), "--no-progress-bar", "-p", "CACHE_DIR", str(out / "cache"),
                 "-p", "SHOW_PROGRESS", "False"]
    for name, value in parameters.items():
        arguments += ["-p", name, str(value)]
    for line in yaml:
        arguments += ["-y", line]
    subprocess.run(arguments, check=True, capture_output=True, text=True, timeout=600)
    return (out / "executed.ipynb").read_text()


def test_import_mode_classifies_a_folder_and_reports_bad_files(image_folder, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    csv = out / "labels.csv"
    empty_data = out / "empty_dir"
    empty_data.mkdir()
    run_notebook(out, INIT_MODE="import", FUTURE_DIR=image_folder, DATA_DIR=empty_data, OUTPUT_CSV=csv)
    table = pd.read_csv(csv, keep_default_na=False)
    assert list(table.columns) == ["filename", "label", "p_fake", "error"]
    rows = {row.filename: row for row in table.itertuples()}
    assert list(rows) == ["a_good.jpg", "c_truncated.jpg", "d_text.png", "e_empty.jpg", "nested/b_good.PNG"]
    for good in ("a_good.jpg", "nested/b_good.PNG"):
        assert rows[good].label in ("Real", "Fake") and rows[good].error == ""
        assert 0.0 <= float(rows[good].p_fake) <= 1.0
    assert rows["c_truncated.jpg"].error.startswith("truncated JPEG")
    assert rows["d_text.png"].error == "not a readable image"
    assert rows["e_empty.jpg"].error == "empty file"
    for bad in ("c_truncated.jpg", "d_text.png", "e_empty.jpg"):
        assert rows[bad].label == "Error" and rows[bad].p_fake == ""
    assert not (out / "model.npy").exists() and not list(empty_data.iterdir())


def test_empty_mode_says_plainly_that_it_is_untrained(image_folder, tmp_path):
    (tmp_path / "no_data").mkdir()
    executed = run_notebook(tmp_path, INIT_MODE="empty", FUTURE_DIR=image_folder,
                            DATA_DIR=tmp_path / "no_data", OUTPUT_CSV=tmp_path / "labels.csv")
    assert "UNTRAINED" in executed
    table = pd.read_csv(tmp_path / "labels.csv")
    assert set(table.p_fake.dropna()) == {0.5}


def test_training_on_the_demo_set_never_touches_the_shipped_model_or_labels(tmp_path):
    shipped = (REPO / "model.npy").read_bytes()
    executed = run_notebook(tmp_path, INIT_MODE="train", DATA_DIR=tmp_path / "data",
                            FUTURE_DIR=tmp_path / "data" / "FutureData", OUTPUT_CSV=tmp_path / "labels.csv",
                            EXPORT_PATH=tmp_path / "model.npy", N_AUGMENT=1)
    assert "DEMO RUN" in executed
    assert (REPO / "model.npy").read_bytes() == shipped
    assert (tmp_path / "model.npy").read_bytes() != shipped
    assert not (tmp_path / "labels.csv").exists()  # demo labels go next to the demo images
    table = pd.read_csv(tmp_path / "data" / "demo" / "labels.csv")
    assert len(table) == 4 and set(table.label) <= {"Real", "Fake"}


def test_search_mode_chooses_from_its_grid_and_trains_with_the_choice(tmp_path):
    executed = run_notebook(tmp_path, INIT_MODE="search", DATA_DIR=tmp_path / "data", FUTURE_DIR=tmp_path / "none",
                            OUTPUT_CSV=tmp_path / "labels.csv", EXPORT_PATH=tmp_path / "model.npy", N_AUGMENT=1,
                            SEARCH_ITERATIONS=60, yaml=["SEARCH_LEARNING_RATES: [0.001, 0.3]", "SEARCH_L2: [0.0001]"])
    chosen = re.search(r"search chose learning rate (\S+), L2 (\S+), (\d+) iterations", executed)
    assert chosen, "the search reported no choice"
    assert float(chosen[1]) in (0.001, 0.3) and float(chosen[2]) == 0.0001 and 0 <= int(chosen[3]) <= 60
    assert "trained on " in executed and (tmp_path / "model.npy").exists()
    table = pd.read_csv(tmp_path / "data" / "demo" / "labels.csv")
    assert len(table) == 4 and set(table.label) <= {"Real", "Fake"}
