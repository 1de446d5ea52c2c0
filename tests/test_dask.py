"""The dask path as users run it: the notebook's kernel, a LocalCluster and a cluster started with the `dask`
command, with nothing installed on the workers but the project's packages; and the in-process API."""

import os
import signal
import socket
import subprocess
import time

import cv2
import dask.array as da
import numpy as np
import pytest
from conftest import BIN, FACES, REPO, noise_image, papermill_command, run_notebook
from distributed import Client
from test_robustness import adversarial_folder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli_cluster(tmp_path_factory):
    """A scheduler and two single-threaded workers started with the `dask` command, elsewhere than the repo."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address, home = f"tcp://127.0.0.1:{port}", tmp_path_factory.mktemp("dask_home")
    quiet = dict(cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                 env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"})
    processes = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--no-dashboard"], **quiet)]
    processes.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
                                       "--no-dashboard"], **quiet))
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def folder_with_faces_and_bad_files(tmp_path_factory):
    """70 shared faces (linked; 120 synthetic images without them) beside files of every awkward kind."""
    folder = tmp_path_factory.mktemp("mixed") / "future"
    adversarial_folder(folder)
    for class_folder in ("Real", "Fake"):
        if (FACES / class_folder).is_dir():
            (folder / class_folder).mkdir()
            for face in sorted((FACES / class_folder).glob("*.jpg"))[::5]:  # 70 of the 350 shared faces
                (folder / class_folder / face.name).symlink_to(face)
    if not (FACES / "Real").is_dir():
        (folder / "synthetic").mkdir()
        for i in range(120):
            cv2.imwrite(str(folder / "synthetic" / f"{i:03d}.png"), noise_image(512, seed=i))
    return folder


@pytest.fixture(scope="module")
def local_labels(nb, folder_with_faces_and_bad_files, tmp_path_factory):
    """The CSV of the shipped model on that folder, extracted by local processes."""
    model = nb.LogisticModel.import_model(REPO / "model.npy")
    csv = tmp_path_factory.mktemp("local") / "labels.csv"
    nb.write_labels(nb.classify_folder(model, folder_with_faces_and_bad_files, n_jobs=2), csv)
    return csv.read_bytes()


def test_the_notebook_gives_the_same_labels_on_every_scheduler(cli_cluster, folder_with_faces_and_bad_files,
                                                               local_labels, tmp_path):
    for scheduler in ("local", cli_cluster):
        csv = tmp_path / f"{scheduler.replace('/', '_').replace(':', '_')}.csv"
        run_notebook(tmp_path / "run", INIT_MODE="import", DATA_DIR=tmp_path / "none", DASK_SCHEDULER=scheduler,
                     FUTURE_DIR=folder_with_faces_and_bad_files, OUTPUT_CSV=csv, CACHE_DIR="")
        assert csv.read_bytes() == local_labels, scheduler
    assert local_labels.count(b"\n") > 15


def test_a_worker_killed_during_a_run_changes_nothing(cli_cluster, folder_with_faces_and_bad_files, local_labels,
                                                      tmp_path):
    command = papermill_command(tmp_path / "run", INIT_MODE="import", DATA_DIR=tmp_path / "none",
                                FUTURE_DIR=folder_with_faces_and_bad_files, DASK_SCHEDULER=cli_cluster, DASK_BATCH=4,
                                CACHE_DIR="", OUTPUT_CSV=tmp_path / "dask.csv")
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with Client(cli_cluster, timeout=60) as client:
        deadline = time.monotonic() + 120
        while not any(client.processing().values()) and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.05)
        busy = [worker for worker, keys in client.processing().items() if keys]
        assert busy, "the run finished before a worker could be killed"
        os.kill(client.run(os.getpid, workers=busy[:1])[busy[0]], signal.SIGKILL)
    assert run.wait(timeout=300) == 0
    assert (tmp_path / "dask.csv").read_bytes() == local_labels


@pytest.fixture(scope="module")
def cluster(nb):
    """Two worker processes on loopback, for training on dask arrays (no notebook function travels)."""
    with nb.local_cluster(2) as local_cluster, Client(local_cluster) as client:
        yield local_cluster.scheduler_address, client


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
