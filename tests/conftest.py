"""Shared fixtures: the notebook's definitions and small synthetic images."""

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook import load_definitions  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FACES = REPO.parent / "shared" / "data" / "faces"


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
    """A folder with two good images, a truncated JPEG, a text file named .png and an empty file."""
    good = noise_image(128, seed=1)
    cv2.imwrite(str(tmp_path / "a_good.jpg"), good)
    (tmp_path / "nested").mkdir()
    cv2.imwrite(str(tmp_path / "nested" / "b_good.PNG"), noise_image(96, seed=2))
    whole = (tmp_path / "a_good.jpg").read_bytes()
    (tmp_path / "c_truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "d_text.png").write_text("this is not an image\n")
    (tmp_path / "e_empty.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored: not an image extension\n")
    return tmp_path


def shared_faces():
    """Paths and labels of the shared face set, or skip the test when it is absent."""
    if not (FACES / "Real").is_dir():
        pytest.skip("../shared/data/faces is not present")
    paths = sorted((FACES / "Real").glob("*.jpg")) + sorted((FACES / "Fake").glob("*.jpg"))
    labels = np.array([0 if p.parent.name == "Real" else 1 for p in paths])
    return paths, labels
