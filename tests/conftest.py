"""Shared fixtures and helpers: the notebook's definitions, small synthetic images, papermill runs."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook import load_definitions  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FACES = REPO.parent / "shared" / "data" / "faces"
STUDY_PHOTOGRAPHS = REPO.parent / "shared" / "data" / "faces-more" / "Real" / "FFHQ-512-q95"
BIN = Path(sys.executable).parent


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs the notebook or starts processes (several seconds)")


@pytest.fixture(scope="session")
def nb():
    """The notebook's definitions as a module."""
    return load_definitions()


def noise_image(side, seed=0, channels=3, dtype=np.uint8):
    """A deterministic random image."""
    rng = np.random.default_rng(seed)
    high = np.iinfo(dtype).max
    shape = (side, side, channels) if channels > 1 else (side, side)
    return rng.integers(0, high, shape, endpoint=True).astype(dtype)


@pytest.fixture
def image_folder(tmp_path):
    """Two good images, a truncated JPEG, a text file named .png, an empty file and a text file."""
    folder = tmp_path / "images"
    (folder / "nested").mkdir(parents=True)
    cv2.imwrite(str(folder / "a_good.jpg"), noise_image(128, seed=1))
    cv2.imwrite(str(folder / "nested" / "b_good.PNG"), noise_image(96, seed=2))
    whole = (folder / "a_good.jpg").read_bytes()
    (folder / "c_truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "d_text.png").write_text("this is not an image\n")
    (folder / "e_empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image either\n")
    (folder / ".hidden.jpg").write_bytes(whole)
    return folder


def shared_faces():
    """Paths and labels of the shared face set, or skip the test when it is absent."""
    if not (FACES / "Real").is_dir():
        pytest.skip("../shared/data/faces is not present")
    paths = sorted((FACES / "Real").glob("*.jpg")) + sorted((FACES / "Fake").glob("*.jpg"))
    labels = np.array([0 if p.parent.name == "Real" else 1 for p in paths])
    return paths, labels


def shared_study_photographs():
    """Paths of the study's 512-pixel photographs (JPEG 95), or skip the test when they are absent."""
    if not STUDY_PHOTOGRAPHS.is_dir():
        pytest.skip("../shared/data/faces-more is not present")
    return sorted(STUDY_PHOTOGRAPHS.glob("*.jpg"))


def papermill_command(out, yaml=(), **parameters):
    """The papermill command that executes the notebook into `out`/executed.ipynb, its cache and model in
    `out` unless `parameters` say otherwise; `yaml` holds parameters given as YAML (lists)."""
    out.mkdir(parents=True, exist_ok=True)
    defaults = {"CACHE_DIR": out / "cache", "SHOW_PROGRESS": False, "EXPORT_PATH": out / "model.npy"}
    arguments = [str(BIN / "papermill"), str(REPO / "DeepFakeLogReg.ipynb"), str(out / "executed.ipynb"),
                 "--cwd", str(REPO), "--no-progress-bar"]
    for name, value in {**defaults, **parameters}.items():
        arguments += ["-p", name, str(value)]
    for line in yaml:
        arguments += ["-y", line]
    return arguments


def run_notebook(out, yaml=(), check=True, **parameters):
    """Execute the notebook with papermill into `out` as a user would; returns (exit code, the executed
    notebook's text, papermill's output)."""
    done = subprocess.run(papermill_command(out, yaml, **parameters), capture_output=True, text=True, timeout=600)
    executed = (out / "executed.ipynb").read_text() if (out / "executed.ipynb").exists() else ""
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done.returncode, executed, done.stdout + done.stderr
