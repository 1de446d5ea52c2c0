"""The notebook as a user runs it: papermill in "import" mode on a folder with bad files."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
from conftest import REPO


def test_import_mode_classifies_a_folder_and_reports_bad_files(image_folder, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    csv = out / "labels.csv"
    empty_data = out / "empty_dir"
    empty_data.mkdir()
    papermill = Path(sys.executable).parent / "papermill"
    subprocess.run(
        [str(papermill), str(REPO / "DeepFakeLogReg.ipynb"), str(out / "executed.ipynb"),
         "-p", "INIT_MODE", "import", "-p", "FUTURE_DIR", str(image_folder),
         "-p", "DATA_DIR", str(empty_data), "-p", "OUTPUT_CSV", str(csv),
         "-p", "CACHE_DIR", str(out / "cache"), "-p", "SHOW_PROGRESS", "False",
         "--cwd", str(REPO), "--no-progress-bar"],
        check=True, capture_output=True, text=True, timeout=600,
    )
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
