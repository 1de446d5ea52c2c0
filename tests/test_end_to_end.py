"""The notebook as a user runs it: papermill, one process per run."""

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, noise_image, papermill_command, run_notebook

pytestmark = pytest.mark.slow


def test_import_mode_classifies_a_folder_and_reports_bad_files(image_folder, tmp_path):
    csv = tmp_path / "labels.csv"
    _, executed, _ = run_notebook(tmp_path / "run", INIT_MODE="import", FUTURE_DIR=image_folder,
                                  DATA_DIR=tmp_path / "none", OUTPUT_CSV=csv)
    assert re.search(r"DATA_DIR \S+none does not exist, so no labelled images are judged", executed)
    table = pd.read_csv(csv, keep_default_na=False)
    assert list(table.columns) == ["filename", "label", "p_fake", "error"]
    rows = {row.filename: row for row in table.itertuples()}
    assert list(rows) == ["a_good.jpg", "c_truncated.jpg", "d_text.png", "e_empty.jpg", "nested/b_good.PNG",
                          "notes.txt"]
    for good in ("a_good.jpg", "nested/b_good.PNG"):
        assert rows[good].label in ("Real", "Fake") and rows[good].error == ""
        assert 0.0 <= float(rows[good].p_fake) <= 1.0
    assert rows["c_truncated.jpg"].error.startswith("truncated JPEG")
    assert rows["d_text.png"].error.startswith("not a readable image")
    assert rows["e_empty.jpg"].error == "empty file"
    for bad in ("c_truncated.jpg", "d_text.png", "e_empty.jpg", "notes.txt"):
        assert rows[bad].label == "Error" and rows[bad].p_fake == "" and rows[bad].error
    assert not (tmp_path / "none").exists()


def test_import_mode_judges_a_folder_of_fakes_alone_with_no_future_data(tmp_path):
    source = tmp_path / "data" / "Fake" / "NewSource"
    source.mkdir(parents=True)
    for seed in range(6):
        cv2.imwrite(str(source / f"{seed}.jpg"), noise_image(128, seed=seed))
    _, executed, _ = run_notebook(tmp_path / "run", INIT_MODE="import", DATA_DIR=tmp_path / "data",
                                  FUTURE_DIR=tmp_path / "absent", OUTPUT_CSV=tmp_path / "labels.csv")
    assert "6 labelled images;" in executed and "6 images x 8 conditions" in executed
    assert re.search(r"NewSource \(6\) +[01]\.\d+ ", executed), "no accuracy by source"
    assert "alone (5-fold CV)" not in executed  # a leak needs two classes to be measured
    assert re.search(r"FUTURE_DIR \S+absent does not exist", executed) and not (tmp_path / "labels.csv").exists()


def test_import_mode_judges_the_labelled_files_that_read(tmp_path):
    """Every fake fails to read, and one photograph: the other photographs are still judged."""
    photos, fakes = tmp_path / "data" / "Real" / "Photos", tmp_path / "data" / "Fake" / "NewGen"
    photos.mkdir(parents=True)
    fakes.mkdir(parents=True)
    for seed in range(2):
        cv2.imwrite(str(photos / f"{seed}.png"), noise_image(128, seed=seed))
    for broken in (photos / "broken.jpg", fakes / "broken.jpg"):
        broken.write_bytes(b"\xff\xd8 not a JPEG")
    _, executed, _ = run_notebook(tmp_path / "run", INIT_MODE="import", DATA_DIR=tmp_path / "data",
                                  FUTURE_DIR=photos, OUTPUT_CSV=tmp_path / "labels.csv")
    assert len(re.findall(r"skipped \S+broken.jpg: not a readable image", executed)) == 2
    assert re.search(r"original +2 ", executed) and "invalid value" not in executed  # judged: the two that read
    labels = pd.read_csv(tmp_path / "labels.csv").set_index("filename").label
    assert labels["broken.jpg"] == "Error" and set(labels[["0.png", "1.png"]]) <= {"Real", "Fake"}


def test_empty_mode_says_plainly_that_it_is_untrained(image_folder, tmp_path):
    (tmp_path / "notes.txt").write_text("a file where a folder was meant")
    _, executed, _ = run_notebook(tmp_path / "run", INIT_MODE="empty", FUTURE_DIR=image_folder,
                                  DATA_DIR=tmp_path / "notes.txt", OUTPUT_CSV=tmp_path / "labels.csv")
    assert "UNTRAINED" in executed
    assert re.search(r"DATA_DIR \S+notes\.txt is not a folder, so no labelled images are judged", executed)
    table = pd.read_csv(tmp_path / "labels.csv")
    assert set(table.p_fake.dropna()) == {0.5}


def test_a_demo_model_never_touches_the_shipped_model_and_says_it_is_a_demo(tmp_path):
    shipped = (REPO / "model.npy").read_bytes()
    _, executed, _ = run_notebook(tmp_path / "run", INIT_MODE="train", DEMO=True, DATA_DIR=tmp_path / "data",
                                  FUTURE_DIR=tmp_path / "data" / "FutureData", OUTPUT_CSV=tmp_path / "labels.csv",
                                  N_AUGMENT=1)
    assert "DEMO RUN" in executed
    assert (REPO / "model.npy").read_bytes() == shipped
    demo_model = tmp_path / "run" / "model.npy"
    assert np.load(demo_model)["demo"] and demo_model.read_bytes() != shipped
    assert not (tmp_path / "labels.csv").exists()  # demo labels go next to the demo images
    table = pd.read_csv(tmp_path / "data" / "demo" / "labels.csv")
    assert len(table) == 4 and set(table.label) <= {"Real", "Fake"}
    _, imported, _ = run_notebook(tmp_path / "again", INIT_MODE="import", MODEL_PATH=demo_model,
                                  FUTURE_DIR=tmp_path / "data" / "demo" / "FutureData", DATA_DIR=tmp_path / "none",
                                  OUTPUT_CSV=tmp_path / "again.csv")
    assert imported.count("a DEMO model") >= 2  # on import and beside the labels


def test_search_mode_chooses_from_its_grid_and_trains_with_the_choice(tmp_path):
    _, executed, _ = run_notebook(
        tmp_path / "run", INIT_MODE="search", DEMO=True, DATA_DIR=tmp_path / "data", FUTURE_DIR=tmp_path / "none",
        OUTPUT_CSV=tmp_path / "labels.csv", N_AUGMENT=1, SEARCH_ITERATIONS=60,
        yaml=["SEARCH_LEARNING_RATES: [0.001, 0.3]", "SEARCH_L2: [0.0001]"])
    chosen = re.search(r"search chose learning rate (\S+), L2 (\S+), (\d+) iterations", executed)
    assert chosen, "the search reported no choice"
    assert float(chosen[1]) in (0.001, 0.3) and float(chosen[2]) == 0.0001 and 0 <= int(chosen[3]) <= 60
    assert "trained on " in executed and (tmp_path / "run" / "model.npy").exists()


def test_pipeline_weights_repeat_the_training_rows_they_name(tmp_path):
    _, executed, _ = run_notebook(tmp_path / "run", INIT_MODE="train", DEMO=True, DATA_DIR=tmp_path / "data",
                                  FUTURE_DIR=tmp_path / "none", OUTPUT_CSV=tmp_path / "labels.csv", N_AUGMENT=1,
                                  yaml=["PIPELINE_WEIGHTS: {Real: 3}"])  # the demo's photographs: pipeline "Real"
    rows = int(re.search(r"training images -> (\d+) rows", executed)[1])
    weighted = int(re.search(r"trained on (\d+) weighted rows", executed)[1])
    assert rows > 0 and weighted == 3 * rows // 2 + rows // 2  # the demo's classes are the same size


def test_training_on_a_folder_without_images_fails_before_any_work(tmp_path):
    code, _, output = run_notebook(tmp_path / "run", check=False, INIT_MODE="train", DATA_DIR=tmp_path / "typo",
                                   OUTPUT_CSV=tmp_path / "labels.csv")
    assert code != 0 and re.search(r"DATA_DIR \S+typo holds 0 real and 0 fake images", output)
    assert not (tmp_path / "run" / "model.npy").exists() and not (tmp_path / "labels.csv").exists()


def test_a_wrong_parameter_stops_the_run_with_one_clear_message(tmp_path):
    code, _, output = run_notebook(tmp_path / "run", check=False, INIT_MODE="import", N_JOBS=-1,
                                   OUTPUT_CSV=tmp_path / "labels.csv")
    assert code != 0 and "N_JOBS must be an integer from 0 to inf, not -1" in output
    assert not (tmp_path / "labels.csv").exists()


def processes_with(marker):
    """The ids of the processes whose environment holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
def test_killing_a_run_leaves_no_worker_processes_behind(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "0000.png"), noise_image(1024, seed=0))
    for i in range(1, 1500):  # seconds of work, so that the kernel (which polls for its parent once
        os.link(images / "0000.png", images / f"{i:04d}.png")  # a second) dies before it is done
    marker = uuid.uuid4().hex
    command = papermill_command(tmp_path / "run", INIT_MODE="import", FUTURE_DIR=images, N_JOBS=2, CACHE_DIR="",
                                OUTPUT_CSV=tmp_path / "labels.csv")
    run = subprocess.Popen(command, env={**os.environ, "TEST_RUN_MARKER": marker}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(processes_with(marker)) < 4 and time.monotonic() < deadline:  # papermill, kernel, two workers
        time.sleep(0.2)
    assert len(processes_with(marker)) >= 4, "the workers never started"
    run.kill()
    run.wait()
    deadline = time.monotonic() + 30
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(marker) == [] and not (tmp_path / "labels.csv").exists()


def test_make_run_writes_a_report_with_every_figure(tmp_path):
    """`make run` as the README says, on the demo set: the executed notebook and a self-contained HTML report."""
    arguments = (f"-p DEMO True -p DATA_DIR {tmp_path}/data -p N_AUGMENT 1 -p OUTPUT_CSV {tmp_path}/labels.csv "
                 f"-p EXPORT_PATH {tmp_path}/model.npy -p CACHE_DIR {tmp_path}/cache -p SHOW_PROGRESS False")
    done = subprocess.run(["make", "run", f"OUT={tmp_path}/out", f"RUN_ARGS={arguments}"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report = (tmp_path / "out" / "DeepFakeLogReg.html").read_text()
    executed = json.loads((tmp_path / "out" / "DeepFakeLogReg.executed.ipynb").read_text())
    figures = sum("image/png" in output.get("data", {})
                  for cell in executed["cells"] for output in cell.get("outputs", []))
    assert figures >= 8 and report.count('src="data:image/png;base64,') == figures
    assert report.count("<img") == figures  # every figure is in the file itself, none is fetched
    assert "Alternative text is missing" not in done.stderr and "No description has been provided" not in report
    assert "Why the first future images got their labels" in report and "DEMO RUN" in report
