"""Speed and memory of the notebook's pipeline, measured side by side in one run (`make bench`).

Writes benchmarks/results.json and prints a table. Every ratio compares two things timed in the
same run on the same files, so it holds on a noisy machine. scikit-learn is a benchmark-only
reference here, never used by the notebook.
"""

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from notebook import load_definitions  # noqa: E402

nb = load_definitions()


def best_of_each(repeats, *works):
    """The shortest wall time of each work() over `repeats` rounds. The works take turns within a
    round, so a change in the machine's load falls on all of them alike."""
    best = [float("inf")] * len(works)
    for _ in range(repeats):
        for index, work in enumerate(works):
            start = time.perf_counter()
            work()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def best_of(repeats, work):
    """The shortest wall time of `repeats` calls of work()."""
    return best_of_each(repeats, work)[0]


def decode_only(path):
    """The floor: decoding one file with cv2.imread."""
    return cv2.imread(str(path)).shape


def decode_all(paths, n_jobs):
    """Decode every file in n_jobs forked processes, as extraction does."""
    with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        list(pool.map(decode_only, paths, chunksize=max(1, min(4, len(paths) // (4 * n_jobs)))))


def seed_azimuthal_profile(spectrum):
    """The seed's azimuthal average: a Python loop over integer radii, one boolean mask each."""
    height, width = spectrum.shape
    y, x = np.indices(spectrum.shape)
    radius = np.hypot(x - width // 2, y - height // 2).astype(int)
    return np.array([spectrum[radius == r].mean() for r in range(radius.max() + 1)])


def extraction_ratio(paths, n_jobs):
    decode, extract = best_of_each(5, lambda: decode_all(paths, n_jobs),
                                   lambda: nb.extract_features(paths, n_jobs=n_jobs, cache_dir=""))
    with tempfile.TemporaryDirectory() as cache:
        first, _ = nb.extract_features(paths, n_jobs=n_jobs, cache_dir=cache)
        start = time.perf_counter()
        second, _ = nb.extract_features(paths, n_jobs=n_jobs, cache_dir=cache)
        cached = time.perf_counter() - start
    return {"decode_seconds": decode, "extract_seconds": extract, "extract_over_decode": extract / decode,
            "cached_extract_seconds": cached, "cached_identical": bool(np.array_equal(first, second))}


def profile_speedup(paths):
    """Seed profile over ours per image, both from the same full spectra."""
    spectra = [np.fft.fftshift(20 * np.log10(np.abs(np.fft.fft2(nb.to_grey(nb.read_image(p, grey=True)))) + 1e-6))
               for p in paths[:3]]
    seed = best_of(1, lambda: [seed_azimuthal_profile(s) for s in spectra]) / len(spectra)
    settings = nb.feature_settings("azimuthal", bands=())  # the rings alone, as the seed computes them
    half = [s[:, s.shape[1] // 2 - 1:] for s in spectra]  # a half-plane of the same size, same work

    def ours_profile(spectrum):
        pooling = nb.frequency_bins(spectrum.shape[0], 2 * spectrum.shape[1] - 2, settings)
        run_sums = np.add.reduceat(spectrum.ravel(), pooling["run_starts"], dtype=np.float64)
        rings = pooling["ring_counts"][0]
        return np.bincount(pooling["run_bins"][0], weights=run_sums, minlength=rings.size + 1)[:-1] / rings

    ours = best_of(20, lambda: [ours_profile(s) for s in half]) / len(half)
    return {"seed_profile_ms": 1e3 * seed, "our_profile_ms": 1e3 * ours, "speedup_over_seed_profile": seed / ours}


def training_ratio(paths, labels, l2):
    """Time for our model and for sklearn lbfgs to reach the optimum's loss within 1e-6 (relative).

    Both run on one BLAS thread: on this 2-core virtual machine a second BLAS thread sometimes
    waits for a busy core, which made our matrix products up to 50% slower from run to run
    (lbfgs, whose products are too small to be split, hardly changed).
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    X, _ = nb.extract_features(paths, n_jobs=2, cache_dir=str(REPO / ".cache" / "features"))
    X = X.astype(np.float64)
    Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1)
    Zb = nb.with_bias_column(Z)
    y = labels.astype(np.float64)
    optimum = nb.newton_method(Zb, y, 1000, l2, tol=1e-13)
    target = nb.penalised_loss(optimum["theta"], Zb, y, l2) * (1 + 1e-6)

    def ours(iterations):
        """The model's default solver, L-BFGS."""
        return nb.lbfgs(Zb, y, iterations, l2, tol=0.0, record_every=iterations)["theta"]

    def newton(iterations):
        """Newton's method with its line search, the model's other second-order solver."""
        return nb.newton_method(Zb, y, iterations, l2, tol=0.0, record_every=iterations)["theta"]

    def sklearn(max_iter):
        model = LogisticRegression(C=1 / (len(y) * l2), tol=1e-14, max_iter=max_iter).fit(Z, y)
        return np.r_[model.intercept_, model.coef_.ravel()]

    def fewest(fit):
        """The smallest iteration budget (doubling, then bisection) whose result reaches the target."""
        low, high = 0, 1
        while nb.penalised_loss(fit(high), Zb, y, l2) > target:
            low, high = high, 2 * high
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if nb.penalised_loss(fit(middle), Zb, y, l2) > target else (low, middle)
        return high

    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")  # lbfgs warns when stopped by max_iter, which is the point here
        our_iterations, newton_iterations, sklearn_iterations = fewest(ours), fewest(newton), fewest(sklearn)
        our_time = best_of(100, lambda: ours(our_iterations))
        newton_time = best_of(100, lambda: newton(newton_iterations))
        sklearn_time = best_of(100, lambda: sklearn(sklearn_iterations))
    return {"our_iterations": our_iterations, "our_train_seconds": our_time,
            "newton_iterations": newton_iterations, "newton_train_seconds": newton_time,
            "sklearn_iterations": sklearn_iterations, "sklearn_train_seconds": sklearn_time,
            "train_over_sklearn": our_time / sklearn_time, "newton_over_sklearn": newton_time / sklearn_time}


def notebook_run(data_dir, future_dir, cache_dir, output):
    """Wall time and peak resident memory (largest process) of a full "train" run of the notebook."""
    code = (
        "import papermill, resource, sys, time, json\n"
        "start = time.perf_counter()\n"
        f"papermill.execute_notebook({str(REPO / 'DeepFakeLogReg.ipynb')!r}, {str(output / 'run.ipynb')!r},"
        f" parameters=dict(INIT_MODE='train', DATA_DIR={data_dir!r}, FUTURE_DIR={future_dir!r},"
        f" CACHE_DIR={cache_dir!r}, EXPORT_PATH={str(output / 'model.npy')!r},"
        f" OUTPUT_CSV={str(output / 'labels.csv')!r}, SHOW_PROGRESS=False), progress_bar=False, cwd={str(REPO)!r})\n"
        "seconds = time.perf_counter() - start\n"
        "peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(json.dumps({'seconds': seconds, 'peak_rss_mb': peak / 1024}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def repeated(paths, factor, folder):
    """The file list `factor` times over, each copy under its own name (symlinks), so no file is
    recognised as already seen."""
    copies = []
    for copy in range(factor):
        for path in paths:
            link = Path(folder) / f"copy{copy}" / path.parent.name / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
            copies.append(link)
    return copies


def scaling(paths, labels, factor, n_jobs):
    """Extraction and training time, and peak memory, on the file list repeated `factor` times."""
    code = (
        "import json, resource, sys, time\n"
        f"sys.path.insert(0, {str(REPO / 'tests')!r})\n"
        "import numpy as np\n"
        "from notebook import load_definitions\n"
        "nb = load_definitions()\n"
        "paths = sys.argv[1:]\n"
        f"labels = np.array({labels.tolist()!r} * {factor})\n"
        "start = time.perf_counter()\n"
        f"X, errors = nb.extract_features(paths, n_jobs={n_jobs}, cache_dir='')\n"
        "extract = time.perf_counter() - start\n"
        "start = time.perf_counter()\n"
        "nb.LogisticRegression(X.shape[1], iterations=20, l2=1e-3, tol=0.0).fit(X, labels)\n"
        "train = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps({'images': len(paths), 'extract_seconds': extract, 'train_seconds': train,"
        " 'parent_peak_rss_mb': peak}))\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        copies = [str(path) for path in repeated(paths, factor, folder)]
        result = subprocess.run([sys.executable, "-c", code, *copies], check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def cluster_throughput(paths, n_workers):
    """Images per second of extraction on a dask LocalCluster of `n_workers` single-threaded workers."""
    from distributed import Client

    # the workers are spawned: each runs this script's top level, which loads the notebook module
    with nb.local_cluster(n_workers) as cluster, Client(cluster):
        nb.extract_features(paths[:8], cache_dir="", scheduler=cluster.scheduler_address)  # warm the workers
        seconds = best_of(2, lambda: nb.extract_features(paths, cache_dir="", scheduler=cluster.scheduler_address))
    return {"workers": n_workers, "seconds": seconds, "images_per_second": len(paths) / seconds,
            "ms_per_image": 1e3 * seconds / len(paths)}


def processor_name():
    """The processor's model name (from /proc/cpuinfo on Linux): the ratios depend on the machine."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", default=str(REPO.parent / "shared" / "data" / "faces"))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    faces = Path(args.faces)
    table, _ = nb.labelled_images(faces)
    if table.empty:
        sys.exit(f"no images under {faces}/Real and {faces}/Fake: pass --faces or FACES=...")
    paths, labels = [Path(path) for path in table.path], table.label.to_numpy()
    results = {"images": len(paths), "processes": args.jobs, "cpu_count": os.cpu_count(),
               "processor": processor_name()}
    print(f"benchmarking on {len(paths)} images from {faces} with {args.jobs} processes", flush=True)
    results.update(extraction_ratio(paths, args.jobs))
    results.update(profile_speedup(paths))
    results.update(training_ratio(paths, labels, l2=1e-3))
    with tempfile.TemporaryDirectory() as temporary:
        output, cache = Path(temporary), str(Path(temporary) / "cache")
        future = str(faces.parent / "FutureData") if (faces.parent / "FutureData").is_dir() else str(faces / "Real")
        cold = notebook_run(str(faces), future, cache, output)
        warm = notebook_run(str(faces), future, cache, output)
    results.update({"notebook_seconds_cold": cold["seconds"], "notebook_seconds_warm": warm["seconds"],
                    "peak_rss_mb": max(cold["peak_rss_mb"], warm["peak_rss_mb"])})
    results["scaling"] = [scaling(paths, labels, factor, args.jobs) for factor in (1, 2, 4)]
    results["dask_cluster"] = [cluster_throughput(paths, workers) for workers in (1, 2)]
    (REPO / "benchmarks" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measure':32s} value")
    for key, value in results.items():
        if key not in ("scaling", "dask_cluster"):
            print(f"{key:32s} {value:.3f}" if isinstance(value, float) else f"{key:32s} {value}")
    print(f"{'images':>8s} {'extract s':>10s} {'train s':>8s} {'parent RSS MB':>14s}")
    for row in results["scaling"]:
        print(f"{row['images']:8d} {row['extract_seconds']:10.2f} {row['train_seconds']:8.2f} "
              f"{row['parent_peak_rss_mb']:14.0f}")
    print(f"{'dask workers':>12s} {'images/s':>9s} {'ms/image':>9s}")
    for row in results["dask_cluster"]:
        print(f"{row['workers']:12d} {row['images_per_second']:9.1f} {row['ms_per_image']:9.1f}")


if __name__ == "__main__":
    main()
