"""The dask path: same features, errors and model as the local path, and a lost worker changes nothing."""

import os
import signal
from pathlib import Path

import cv2
import dask.array as da
import numpy as np
import pytest
from conftest import noise_image, shared_faces
from distributed import Client


@pytest.fixture(scope="module")
def cluster(nb):
    """Two worker processes on loopback."""
    preload = str(Path(__file__).with_name("dask_preload.py"))
    with nb.local_cluster(2, preload=[preload]) as local_cluster, Client(local_cluster) as client:
        yield local_cluster.scheduler_address, client


@pytest.fixture(scope="module")
def many_images(tmp_path_factory):
    """60 small images of varied sizes, plus one unreadable file."""
    folder = tmp_path_factory.mktemp("many")
    for i in range(60):
        cv2.imwrite(str(folder / f"{i:02d}.png"), noise_image(160 + 8 * (i % 7), seed=i))
    (folder / "zz_broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return sorted(folder.iterdir())


def test_dask_extraction_equals_the_local_one_and_fills_the_same_cache(nb, cluster, many_images, image_folder,
                                                                       tmp_path):
    address, _ = cluster
    paths = many_images + nb.list_images(image_folder)
    views = ["original", "jpeg75", "down0.75", "aug3"] * (len(paths) // 4) + ["original"] * (len(paths) % 4)
    local = nb.extract_features(paths, views, n_jobs=1, cache_dir="", scheduler="")
    remote = nb.extract_features(paths, views, cache_dir=str(tmp_path / "cache"), scheduler=address)
    np.testing.assert_array_equal(local[0], remote[0])
    assert local[1] == remote[1] and len(remote[1]) == 4
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == len(paths) - 4
    from_cache = nb.extract_features(paths, views, n_jobs=1, cache_dir=str(tmp_path / "cache"), scheduler="")
    np.testing.assert_array_equal(from_cache[0], local[0])


def test_dask_extraction_equals_the_local_one_on_the_shared_faces(nb, cluster):
    address, _ = cluster
    paths, _ = shared_faces()
    local = nb.extract_features(paths, n_jobs=1, cache_dir="", scheduler="")
    remote = nb.extract_features(paths, cache_dir="", scheduler=address)
    np.testing.assert_array_equal(local[0], remote[0])
    assert local[1] == remote[1] == {}


def test_a_worker_killed_during_extraction_changes_nothing(nb, cluster, tmp_path):
    _, client = cluster
    for i in range(40):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), noise_image(768, seed=i))
    settings = nb.feature_settings("both")
    tasks = [(str(path), [row], ["original"], settings) for row, path in enumerate(sorted(tmp_path.iterdir()))]
    expected = {path: result for path, _, result in map(nb.file_features, tasks)}
    results = nb.run_tasks_on_dask(tasks, client, batch_size=2)
    received = [next(results)]
    busy = [worker for worker, keys in client.processing().items() if keys]
    assert busy, "the run finished before a worker could be killed"
    os.kill(client.run(os.getpid)[busy[0]], signal.SIGKILL)
    received += list(results)
    assert sorted(path for path, _, _ in received) == sorted(expected)
    for path, _, result in received:
        np.testing.assert_array_equal(result, expected[path])


@pytest.mark.parametrize("quadratic", [False, True])
def test_chunked_training_gives_the_in_memory_model(nb, cluster, tmp_path, quadratic):
    rng = np.random.default_rng(0)
    settings = nb.feature_settings("both")
    X = rng.normal(size=(600, len(nb.feature_names(settings)))).astype(np.float32)
    y = (X[:, 0] - X[:, 50] + rng.normal(size=600) > 0).astype(int)
    options = dict(settings=settings, iterations=300, l2=1e-2, quadratic=quadratic)
    in_memory = nb.LogisticModel(X.shape[1], solver="newton", **options).fit(X, y)
    chunked = nb.LogisticModel(X.shape[1], **options).fit(da.from_array(X, chunks=(150, -1)), y)
    assert chunked.recorded_at_[-1] == in_memory.recorded_at_[-1]  # "auto" takes Newton's method on dask
    chunked.export_model(tmp_path / "chunked.npy")
    loaded = nb.LogisticModel.import_model(tmp_path / "chunked.npy")
    assert np.abs(loaded.predict_proba(X) - in_memory.predict_proba(X)).max() < 1e-6
