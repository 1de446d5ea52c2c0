"""Reading images and spectral features: formats, sizes, bad files, the cache and parallelism."""

import math

import cv2
import numpy as np
import pytest
from conftest import noise_image


def write(path, image, *params):
    assert cv2.imwrite(str(path), image, list(params))
    return path


def test_every_format_and_depth_reads_as_one_grey_channel(nb, tmp_path):
    colour = noise_image(100, seed=1)
    files = {
        "grey.png": noise_image(100, channels=1),
        "colour.jpg": colour,
        "alpha.png": np.dstack([colour, np.full((100, 100), 255, np.uint8)]),
        "deep.png": noise_image(100, seed=2, dtype=np.uint16),
        "deep.tif": noise_image(100, seed=3, channels=1, dtype=np.uint16),
        "colour.bmp": colour,
        "colour.webp": colour,
    }
    for name, image in files.items():
        grey = nb.to_grey(nb.read_image(write(tmp_path / name, image)))
        assert grey.shape == (100, 100) and grey.dtype == np.float32, name
        assert 0 <= grey.min() and grey.max() <= 255.0 + 1e-3, name
    alpha = nb.to_grey(nb.read_image(tmp_path / "alpha.png"))
    np.testing.assert_array_equal(alpha, nb.to_grey(nb.read_image(write(tmp_path / "c.png", colour))))


@pytest.mark.parametrize("make, reason", [
    (lambda raw: raw[: len(raw) // 2], "truncated JPEG"),
    (lambda raw: b"", "empty file"),
    (lambda raw: b"hello, not an image", "not a readable image"),
])
def test_bad_bytes_give_a_clear_reason(nb, tmp_path, make, reason):
    raw = write(tmp_path / "good.jpg", noise_image(128)).read_bytes()
    with pytest.raises(nb.ImageError, match=reason):
        nb.decode_image(make(raw))


def test_truncated_png_is_refused(nb, tmp_path):
    raw = write(tmp_path / "good.png", noise_image(128)).read_bytes()
    with pytest.raises(nb.ImageError, match="truncated PNG"):
        nb.decode_image(raw[:-30])


def test_tiny_images_are_refused(nb, tmp_path):
    with pytest.raises(nb.ImageError, match="too small"):
        nb.read_image(write(tmp_path / "tiny.png", noise_image(40)))


@pytest.mark.parametrize("kind", ["azimuthal", "spectrum2d", "both"])
def test_feature_length_is_the_same_for_any_size_and_aspect(nb, kind):
    settings = nb.feature_settings(kind)
    lengths = {nb.image_features(np.random.default_rng(0).random(shape, np.float32) * 255, settings).size
               for shape in [(64, 64), (64, 301), (517, 64), (256, 256), (1024, 768)]}
    assert lengths == {len(nb.feature_names(settings))}


@pytest.mark.parametrize("trend_degree", [0, 2])
def test_azimuthal_profile_equals_a_loop_of_ring_masks(nb, trend_degree):
    """The run pooling gives what the seed's loop over radii with boolean masks gives, minus its
    mean (degree 0) or minus its least-squares parabola in the log radius of the rings' centres."""
    settings = nb.feature_settings("azimuthal", bands=(), trend_degree=trend_degree)
    grey = np.random.default_rng(1).random((200, 160), np.float32) * 255
    power = nb.periodogram_db(grey)
    f_rows, f_cols = nb.frequencies(*grey.shape)
    radius = np.hypot(f_rows, f_cols) / np.hypot(0.5, 0.5)
    n_rings = settings["radial_bins"]
    ring = np.minimum((radius * n_rings).astype(int), n_rings - 1)
    not_zero = np.ones_like(ring, bool)
    not_zero[0, 0] = False
    looped = np.array([power[(ring == r) & not_zero].mean() for r in range(n_rings)])
    log_centres = np.log((np.arange(n_rings) + 0.5) / n_rings)
    trend = np.polyval(np.polyfit(log_centres, looped, 2), log_centres) if trend_degree else looped.mean()
    np.testing.assert_allclose(nb.spectral_features(grey, settings), looped - trend, rtol=1e-5, atol=1e-4)


def test_cells_lose_their_parabola_in_the_log_radius_of_the_cell_centres(nb):
    """The 2-D cells of cycles per pixel (rows by |f_y|, columns by f_x) are a loop over cell masks minus
    its least-squares parabola in the log radius of each cell's centre; the Nyquist row and column belong
    to the last row and column of cells."""
    settings = nb.feature_settings("spectrum2d", bands=(), grid_rows=6, grid_cols=3, residual_period=0,
                                   dct_period=0)
    grey = np.random.default_rng(5).random((180, 150), np.float32) * 255
    power = nb.periodogram_db(grey)
    f_rows, f_cols = np.broadcast_arrays(*nb.frequencies(*grey.shape))
    cell = np.minimum((np.abs(f_rows) * 12).astype(int), 5) * 3 + np.minimum((f_cols * 6).astype(int), 2)
    not_zero = np.ones_like(cell, bool)
    not_zero[0, 0] = False
    looped = np.array([power[(cell == c) & not_zero].mean() for c in range(18)])
    centre_rows, centre_cols = np.divmod(np.arange(18), 3)
    log_radii = np.log(np.hypot((centre_rows + 0.5) / 12, (centre_cols + 0.5) / 6))
    trend = np.polyval(np.polyfit(log_radii, looped, 2), log_radii)
    np.testing.assert_allclose(nb.spectral_features(grey, settings), looped - trend, rtol=1e-5, atol=1e-4)


def test_a_smooth_tilt_of_the_spectrum_leaves_the_cycles_per_pixel_features(nb):
    """Filtering by |F| -> |F|·r^-1/2 (a steeper power law) moves the centred rings and cells a lot,
    and hardly at all once their trend in log r is taken out."""
    grey = blurred_noise(256)
    f_rows, f_cols = np.fft.fftfreq(256)[:, None], np.fft.fftfreq(256)[None, :]
    gain = np.maximum(np.hypot(f_rows, f_cols), 1 / 256) ** -0.5
    tilted = np.real(np.fft.ifft2(np.fft.fft2(grey) * gain)).astype(np.float32)
    shifts = {}
    for degree in (0, 2):
        settings = nb.feature_settings("both", bands=(), residual_period=0, dct_period=0, trend_degree=degree)
        shifts[degree] = np.abs(nb.spectral_features(tilted, settings) - nb.spectral_features(grey, settings))
    assert shifts[0].mean() > 1.0 and shifts[2].mean() < shifts[0].mean() / 10


def test_band_cells_equal_a_loop_of_cell_masks_in_cycles_per_image(nb):
    """A band has its own grid, drawn in cycles per image; cells beyond the image's Nyquist limit get 0."""
    settings = nb.feature_settings("spectrum2d", bands=(300,), band_bins=(4, 4, 3), residual_period=0, dct_period=0,
                                   colour_below=0)
    grey = np.random.default_rng(3).random((200, 160), np.float32) * 255
    power = nb.periodogram_db(grey)
    f_rows, f_cols = nb.frequencies(*grey.shape)
    band_rows, band_cols = np.broadcast_arrays(f_rows * 200 / 300, f_cols * 160 / 300)
    cell = np.minimum((np.abs(band_rows) * 8).astype(int), 3) * 3 + (band_cols * 6).astype(int)
    usable = (np.abs(band_rows) < 0.5) & (band_cols < 0.5)
    usable[0, 0] = False
    looped = np.array([power[(cell == c) & usable].mean() if ((cell == c) & usable).any() else np.nan
                       for c in range(12)])
    expected = np.where(np.isnan(looped), 0.0, looped - np.nanmean(looped))
    band = nb.spectral_features(grey, settings)[np.char.endswith(nb.feature_names(settings), "@300")]
    assert band.size == 12 and np.isnan(looped).any()
    np.testing.assert_allclose(band, expected, rtol=1e-5, atol=1e-4)


def blurred_noise(side, seed=0):
    """Noise blurred over 1/128 of the side: its spectrum falls off at a fixed number of cycles per
    image, wherever that lands in cycles per pixel."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.normal(0, 50, (side, side)).astype(np.float32), (0, 0), side / 128)
    return 100 + image + rng.normal(0, 0.5, image.shape).astype(np.float32)


def test_band_features_stay_put_when_the_image_is_downscaled(nb):
    """Halving the image moves its spectrum's fall-off on the cycles-per-pixel axis, not in a band,
    which is measured in cycles per image."""
    settings = nb.feature_settings("both", bands=(256,), residual_period=0, dct_period=0, colour_below=0)
    large = blurred_noise(512)
    small = cv2.resize(large, (256, 256), interpolation=cv2.INTER_AREA)
    shift = np.abs(nb.spectral_features(large, settings) - nb.spectral_features(small, settings))
    in_band = np.char.endswith(nb.feature_names(settings), "@256")
    native_shift, band_shift = shift[~in_band].mean(), shift[in_band].mean()
    assert band_shift < native_shift / 5


def test_a_band_beyond_the_nyquist_limit_gets_the_mean_in_its_empty_bins(nb):
    settings = nb.feature_settings("azimuthal", bands=(768,), residual_period=0, dct_period=0, colour_below=0)
    features = nb.spectral_features(blurred_noise(256), settings)
    rings = settings["band_bins"][0]
    band = features[np.char.endswith(nb.feature_names(settings), "@768")]
    radius_limit = np.hypot(256 / 768 / 2, 256 / 768 / 2) / np.hypot(0.5, 0.5)  # the image's corner frequency
    beyond = np.arange(rings) >= np.ceil(radius_limit * rings)
    assert beyond.any() and np.all(band[beyond] == 0.0)
    assert np.all(band[~beyond] != 0.0)
    assert abs(band[~beyond].mean()) < 1e-4


def test_upsampling_traces_show_at_high_frequency(nb):
    """A zero-insertion upsampled image's centred profile (no trend taken out) tilts away from a
    natural one's at high frequency."""
    rng = np.random.default_rng(2)
    settings = nb.feature_settings("azimuthal", bands=(), trend_degree=0)
    real = nb.spectral_features(nb.to_grey(nb.demo_image(False, rng)), settings)
    fake = nb.spectral_features(nb.to_grey(nb.demo_image(True, rng)), settings)
    difference = real - fake
    tilt = difference[-8:].mean() - difference[:8].mean()
    assert abs(tilt) > 3 * difference[:8].std()


def looped_residual_pairs(grey, period, quantum, limit):
    """The residual pairs by the definition, one pixel at a time: an independent oracle."""
    counts = {"rows": {}, "cols": {}, "cross": {}}

    def level(r):
        return max(-limit, min(limit, math.floor(r / quantum + 0.5)))

    def count(table, pair):
        counts[table][pair] = counts[table].get(pair, 0) + 1

    for top in range(0, grey.shape[0] - 3, period):
        for y in (top + 1, top + 2):
            row = [level(grey[y, x - 1] - 2 * grey[y, x] + grey[y, x + 1]) for x in range(1, grey.shape[1] - 1)]
            for pair in zip(row[:-1], row[1:], strict=True):
                count("rows", pair)
            for x, along_row in enumerate(row, start=1):
                count("cross", (along_row, level(grey[y - 1, x] - 2 * grey[y, x] + grey[y + 1, x])))
        for x in range(grey.shape[1]):
            count("cols", tuple(level(grey[y - 1, x] - 2 * grey[y, x] + grey[y + 1, x]) for y in (top + 1, top + 2)))
    features = []
    levels = range(-limit, limit + 1)
    for along in ("rows", "cols"):
        total = sum(counts[along].values())
        for a in levels:
            for b in range(a, limit + 1):
                both_orders = counts[along].get((a, b), 0) + counts[along].get((b, a), 0)
                features.append(math.log(both_orders / (2 * total) + 1e-6))
    total = sum(counts["cross"].values())
    features += [math.log(counts["cross"].get((a, b), 0) / total + 1e-6) for a in levels for b in levels]
    return np.array(features)


@pytest.mark.parametrize("quantum, limit", [(2, 2), (0.5, 8)])  # the default, and the largest limit allowed
def test_residual_pairs_equal_a_pixel_loop(nb, quantum, limit):
    grey = np.random.default_rng(4).normal(128, 3, (45, 30)).round().astype(np.float32)
    settings = nb.feature_settings("azimuthal", bands=(), residual_period=8, residual_quantum=quantum,
                                   residual_limit=limit)
    features = nb.residual_features(grey, settings)
    np.testing.assert_allclose(features, looped_residual_pairs(grey, 8, quantum, limit), rtol=1e-5, atol=1e-5)
    assert limit in (2, nb.SETTING_LIMITS["residual_limit"][2])


def test_residual_pair_names(nb):
    settings = nb.feature_settings("azimuthal", bands=(), colour_below=0)
    names = nb.feature_names(settings)
    assert nb.residual_features(np.zeros((64, 64), np.float32), settings).size == 55
    assert names[-118:-63] == [n for n in names if n.startswith(("pair", "cross"))]
    assert names[-118] == "pair-2-2_rows" and names[-89] == "pair+2+2_cols" and names[-64] == "cross+2+2"


def test_residual_pairs_ignore_brightness_ramps_and_mirroring(nb):
    """Second differences cancel any plane a + b·x + c·y, and a left-right mirror only swaps pairs."""
    grey = np.random.default_rng(5).integers(0, 200, (96, 80)).astype(np.float32)
    y, x = np.mgrid[:96, :80].astype(np.float32)
    settings = nb.feature_settings("both")
    features = nb.residual_features(grey, settings)
    np.testing.assert_array_equal(nb.residual_features(grey + 3 * x - 2 * y + 17, settings), features)
    np.testing.assert_array_equal(nb.residual_features(np.ascontiguousarray(grey[:, ::-1]), settings), features)
    assert not np.array_equal(nb.residual_features(grey * 0.5, settings), features)  # the quantum is in grey levels


def looped_block_dct(grey, period):
    """The block DCT features the slow way: cv2.dct of one 8 × 8 block at a time."""
    magnitudes = [np.abs(cv2.dct(grey[top:top + 8, left:left + 8].astype(np.float32)))
                  for top in range(0, grey.shape[0] // 8 * 8, period) for left in range(0, grey.shape[1] // 8 * 8, 8)]
    log_means = np.log(np.mean(magnitudes, axis=0).ravel()[1:] + 1e-3)
    return log_means - log_means.mean()


@pytest.mark.parametrize("shape, period", [((64, 64), 8), ((203, 150), 32), ((1024, 768), 64)])
def test_block_dct_equals_opencv_block_by_block(nb, shape, period):
    grey = np.random.default_rng(6).integers(0, 256, shape).astype(np.float32)
    settings = nb.feature_settings("both", dct_period=period, colour_below=0)
    np.testing.assert_allclose(nb.dct_features(grey, settings), looped_block_dct(grey, period), atol=2e-4)
    names = nb.feature_names(settings)
    assert names[-63:] == [n for n in names if n.startswith("dct")] and names[-63] == "dct0_1" and names[-1] == "dct7_7"


def test_block_dct_describes_the_shape_not_the_contrast_or_brightness(nb):
    """Contrast scales every |C_kl| alike and brightness moves only C_00, so the centred logs stay put."""
    grey = nb.to_grey(noise_image(128, seed=7))
    settings = nb.feature_settings("both")
    features = nb.dct_features(grey, settings)
    np.testing.assert_allclose(nb.dct_features(0.5 * grey + 40, settings), features, atol=1e-3)
    blurred = nb.dct_features(cv2.GaussianBlur(grey, (0, 0), 1.0), settings)
    assert blurred[-1] < features[-1] - 1  # less detail: the highest frequency loses most


def test_block_dct_reads_one_row_of_blocks_in_every_period(nb):
    grey = np.random.default_rng(8).integers(0, 256, (256, 256)).astype(np.float32)
    settings = nb.feature_settings("both", dct_period=32)
    unread = grey.copy()
    unread[8:32] = 0  # rows 8-31 lie outside the first period's one row of blocks
    np.testing.assert_array_equal(nb.dct_features(unread, settings), nb.dct_features(grey, settings))
    unread[7] = 0
    assert not np.array_equal(nb.dct_features(unread, settings), nb.dct_features(grey, settings))


def test_image_features_are_the_spectrum_the_pairs_the_block_dct_then_the_colour_cues(nb):
    colour = noise_image(128, seed=3)
    grey = nb.to_grey(colour)
    settings = nb.feature_settings("both")
    np.testing.assert_array_equal(nb.image_features(grey, settings, colour),
                                  np.r_[nb.spectral_features(grey, settings), nb.residual_features(grey, settings),
                                        nb.dct_features(grey, settings), nb.colour_features(colour)])
    without = nb.feature_settings("both", residual_period=0, dct_period=0, colour_below=0)
    np.testing.assert_array_equal(nb.image_features(grey, without, colour), nb.spectral_features(grey, without))
    assert len(nb.feature_names(settings)) == 120 + 55 + 63 + 88
    assert (nb.feature_columns(settings).family == "colour").sum() == nb.N_COLOUR_CUES == 88


@pytest.mark.parametrize("side", [128, 704])
def test_a_left_right_mirror_leaves_every_feature(nb, side):
    """A mirrored face is as real as the face: the cells pool |f_y| (a mirror turns f_y into -f_y on the
    half-plane), and the rings, residual pairs, colour cues and block DCT (whose 8-pixel grid a mirror of
    a width divisible by 8 maps onto itself) do not see the side either."""
    colour = noise_image(side, seed=side)
    mirrored = np.ascontiguousarray(colour[:, ::-1])
    settings = nb.feature_settings()
    features = nb.image_features(nb.to_grey(colour), settings, colour)
    np.testing.assert_allclose(nb.image_features(nb.to_grey(mirrored), settings, mirrored), features, atol=2e-5)
    assert np.abs(features).max() > 0.1


@pytest.mark.parametrize("side, has_cues", [(128, True), (671, True), (672, False), (1024, False)])
def test_only_images_under_colour_below_get_colour_cues(nb, side, has_cues):
    colour = noise_image(side, seed=side)
    settings = nb.feature_settings()
    cues = nb.image_features(nb.to_grey(colour), settings, colour)[-88:]
    np.testing.assert_array_equal(cues, nb.colour_features(colour) if has_cues else np.zeros(88, np.float32))


def test_colour_cues_of_a_grey_image_are_those_of_its_eight_bits_in_three_channels(nb):
    grey = noise_image(96, seed=4, channels=1)
    expected = nb.colour_features(np.dstack([grey] * 3))
    np.testing.assert_array_equal(nb.colour_features(grey), expected)
    np.testing.assert_array_equal(nb.image_features(nb.to_grey(grey), nb.feature_settings())[-88:], expected)
    saturation, clipped, pairs, correlations = np.split(expected, [8, 10, 85])
    assert saturation[0] == pytest.approx(np.log(1 + 1e-4)) and np.allclose(correlations, 1)
    diagonal = np.zeros((5, 5), bool)
    np.fill_diagonal(diagonal, True)  # equal channels: their residuals always take equal levels
    assert (pairs.reshape(3, 5, 5)[:, ~diagonal] == np.float32(np.log(1e-6))).all()
    np.testing.assert_allclose(np.exp(pairs.reshape(3, 25)).sum(axis=1), 1, atol=1e-4)


def test_colour_cues_count_saturation_and_clipping(nb):
    image = np.full((64, 64, 3), 128, np.uint8)
    image[:16] = (0, 0, 255)  # a quarter pure red: saturation 255, clipped high and low
    image[16:24] = (200, 100, 50)  # an eighth of saturation 191 (bin 5)
    saturation, clipped = np.split(np.exp(nb.colour_features(image)[:10]) - 1e-4, [8])
    np.testing.assert_allclose(saturation, [5 / 8, 0, 0, 0, 0, 1 / 8, 0, 1 / 4], atol=1e-6)
    np.testing.assert_allclose(clipped, [1 / 4, 1 / 4], atol=1e-6)
    assert (nb.colour_features(np.zeros((64, 64, 3), np.uint8))[-3:] == 0).all()  # flat channels: no correlation


def random_downscales(nb, monkeypatch, n_seeds):
    """(factor, kernel, blur) of every downscale that random_perturbation draws from seeds 0 .. n_seeds - 1."""
    calls = []
    monkeypatch.setattr(nb, "downscale", lambda image, factor, kernel="area", blur=0.0:
                        calls.append((factor, kernel, blur)) or image)
    for seed in range(n_seeds):
        nb.random_perturbation(np.zeros((100, 100), np.uint8), np.random.default_rng(seed))
    return calls


def test_half_of_the_random_downscales_use_a_common_ratio(nb, monkeypatch):
    factors = [factor for factor, _, _ in random_downscales(nb, monkeypatch, 600)]
    common = np.isin(factors, nb.COMMON_RATIOS)
    assert 150 < len(factors) < 250 and 0.4 < common.mean() < 0.6
    assert set(np.asarray(factors)[common]) == set(nb.COMMON_RATIOS)
    assert all(0.35 <= factor <= 1 for factor in factors)


def test_random_downscales_draw_every_kernel_and_one_in_nine_blurs_first(nb, monkeypatch):
    calls = random_downscales(nb, monkeypatch, 2700)
    blurred = [(kernel, blur) for _, kernel, blur in calls if blur]
    kernels = [kernel for _, kernel, blur in calls if not blur]
    assert 0.08 < len(blurred) / len(calls) < 0.145
    assert all(kernel == "linear" and 0.3 <= blur <= 0.5 for kernel, blur in blurred)
    shares = [kernels.count(kernel) / len(kernels) for kernel in nb.RESAMPLERS]
    assert set(kernels) == set(nb.RESAMPLERS) and all(0.2 < share < 0.3 for share in shares)


def test_one_random_view_in_twenty_is_a_jpeg_at_85_to_100_cropped_afterwards(nb, monkeypatch):
    steps = []
    monkeypatch.setattr(nb, "jpeg_reencode", lambda image, quality: steps.append(("jpeg", int(quality))) or image + 1)
    monkeypatch.setattr(nb, "crop", lambda image, side, top=None, left=None:
                        steps.append(("crop", int(image[0, 0]), side)) or image[:side, :side])
    monkeypatch.setattr(nb, "downscale", lambda image, factor, kernel="area", blur=0.0:
                        steps.append(("down",)) or image)
    views = []  # the steps of each seed's view
    for seed in range(2000):
        steps.clear()
        nb.random_perturbation(np.zeros((100, 100), np.uint8), np.random.default_rng(seed))
        views.append(list(steps))
    two_steps = [view for view in views if len(view) == 2]
    assert all(len(view) in (1, 2) for view in views)
    assert 0.03 < len(two_steps) / len(views) < 0.07
    assert all(first[0] == "jpeg" and second[:2] == ("crop", 1) for first, second in two_steps)  # the JPEG's pixels
    assert {first[1] for first, _ in two_steps} == set(range(85, 101))
    crops = [view[-1][2] for view in views if view[-1][0] == "crop"]
    assert min(crops) >= 60 and max(crops) <= 100
    single_jpegs = [view[0][1] for view in views if len(view) == 1 and view[0][0] == "jpeg"]
    assert min(single_jpegs) == 50 and max(single_jpegs) == 100


def test_downscale_resamples_with_the_kernel_asked_for_and_a_blur_weakens_the_top_octave(nb):
    image = noise_image(256, channels=1)
    for kernel, flag in nb.RESAMPLERS.items():
        expected = cv2.resize(image, (128, 128), interpolation=flag)
        np.testing.assert_array_equal(nb.downscale(image, 0.5, kernel), expected)
    sharp, smooth = (nb.downscale(image, 0.5, "linear", blur) for blur in (0.0, 0.5))
    assert smooth.shape == sharp.shape == (128, 128)

    def top_octave_power(small):
        spectrum = np.abs(np.fft.fft2(small.astype(float) - small.mean())) ** 2
        radius = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128)))
        return spectrum[radius > 0.25].sum() / spectrum.sum()

    assert top_octave_power(smooth) < 0.6 * top_octave_power(sharp)


def test_extract_features_reports_bad_files_and_keeps_the_rest(nb, image_folder):
    paths, problems = nb.list_files(image_folder)
    X, errors = nb.extract_features(paths, n_jobs=2, cache_dir="")
    names = [p.name for p in paths]
    assert names == ["a_good.jpg", "c_truncated.jpg", "d_text.png", "e_empty.jpg", "b_good.PNG", "notes.txt"]
    assert X.dtype == np.float32 and X.shape == (6, len(nb.feature_names(nb.feature_settings()))) and not problems
    failed = np.isnan(X).all(axis=1)
    assert list(failed) == [False, True, True, True, False, True]
    assert set(errors) == {str(paths[i]) for i in (1, 2, 3, 5)}
    assert "truncated" in errors[str(paths[1])] and "empty" in errors[str(paths[3])]


def test_parallel_serial_and_cached_features_are_identical(nb, tmp_path):
    paths = [write(tmp_path / f"{i}.png", noise_image(80 + 8 * i, seed=i)) for i in range(6)]
    views = ["original", "jpeg75", "down0.75", "crop64", "aug7", "original"]
    serial, _ = nb.extract_features(paths, views, n_jobs=1, cache_dir="")
    parallel, _ = nb.extract_features(paths, views, n_jobs=2, cache_dir=str(tmp_path / "cache"))
    cached, _ = nb.extract_features(paths, views, n_jobs=2, cache_dir=str(tmp_path / "cache"))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 6
    np.testing.assert_array_equal(serial, parallel)
    np.testing.assert_array_equal(parallel, cached)


def test_cache_is_invalidated_when_the_file_changes(nb, tmp_path):
    path = write(tmp_path / "x.png", noise_image(96, seed=1))
    before, _ = nb.extract_features([path], n_jobs=1, cache_dir=str(tmp_path / "cache"))
    write(path, noise_image(96, seed=2))
    after, _ = nb.extract_features([path], n_jobs=1, cache_dir=str(tmp_path / "cache"))
    fresh, _ = nb.extract_features([path], n_jobs=1, cache_dir="")
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, fresh)


def test_a_file_rewritten_after_its_digest_gets_an_error_row_not_a_cache_entry(nb, tmp_path, monkeypatch):
    rewritten = write(tmp_path / "x.png", noise_image(96, seed=1))
    steady = write(tmp_path / "y.png", noise_image(96, seed=3))
    digest_before = nb.file_digest(rewritten)
    write(rewritten, noise_image(96, seed=2))  # as if rewritten between the digest and the worker's read
    real_digest = nb.file_digest
    monkeypatch.setattr(nb, "file_digest", lambda path: digest_before if path == str(rewritten) else real_digest(path))
    X, errors = nb.extract_features([rewritten, steady], n_jobs=1, cache_dir=str(tmp_path / "cache"))
    assert list(errors) == [str(rewritten)] and "changed" in errors[str(rewritten)]
    assert np.isnan(X[0]).all() and np.isfinite(X[1]).all()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_views_apply_the_protocol_perturbations(nb):
    image = noise_image(200)
    assert nb.apply_view(image, "down0.5").shape == (100, 100, 3)
    assert nb.apply_view(image, "crop128").shape == (128, 128, 3)
    assert nb.apply_view(image, "jpeg60").shape == image.shape
    np.testing.assert_array_equal(nb.apply_view(image, "aug5"), nb.apply_view(image, "aug5"))
    with pytest.raises(ValueError):
        nb.apply_view(image, "rotate90")


def test_views_joined_by_plus_apply_in_turn_left_first(nb):
    image = noise_image(200)
    chained = nb.apply_view(image, "crop128+jpeg60")
    np.testing.assert_array_equal(chained, nb.jpeg_reencode(nb.crop(image, 128), 60))
    assert not np.array_equal(chained, nb.crop(nb.jpeg_reencode(image, 60), 128))  # the order matters
    assert nb.apply_view(image, "down0.5+crop64+jpeg90").shape == (64, 64, 3)
    with pytest.raises(ValueError):
        nb.apply_view(image, "crop128+rotate90")


def test_a_crop_on_the_jpeg_grid_and_a_jpeg_give_the_same_grey_pixels_in_either_order(nb):
    grey = noise_image(256, channels=1)  # the centred 192 crop starts 32 pixels in, on the 8-pixel grid
    np.testing.assert_array_equal(nb.apply_view(grey, "crop192+jpeg90"), nb.apply_view(grey, "jpeg90+crop192"))
    assert not np.array_equal(nb.apply_view(grey, "crop196+jpeg90"), nb.apply_view(grey, "jpeg90+crop196"))


def test_a_crop_saved_as_png_gives_the_features_of_the_crop_in_memory(nb, tmp_path):
    photo = write(tmp_path / "photo.jpg", cv2.GaussianBlur(noise_image(256), (5, 5), 1.5), cv2.IMWRITE_JPEG_QUALITY, 90)
    crop = write(tmp_path / "crop.png", nb.crop(cv2.imread(str(photo), cv2.IMREAD_COLOR), 200))
    settings = nb.feature_settings("both")
    in_memory, _ = nb.extract_features([photo], ["crop200"], settings, n_jobs=1, cache_dir="")
    from_file, _ = nb.extract_features([crop], None, settings, n_jobs=1, cache_dir="")
    np.testing.assert_array_equal(from_file, in_memory)
    png_decoder_grey = cv2.imread(str(crop), cv2.IMREAD_GRAYSCALE)
    assert (png_decoder_grey != nb.read_image(crop, grey=True)).mean() > 0.1  # why PNGs are read in colour


def test_jpeg_quality_is_read_from_the_quantisation_table(nb, tmp_path):
    for quality in (60, 75, 90, 100):
        path = write(tmp_path / f"q{quality}.jpg", noise_image(64), cv2.IMWRITE_JPEG_QUALITY, quality)
        assert abs(nb.jpeg_quality(path) - quality) <= 1
    assert np.isnan(nb.jpeg_quality(write(tmp_path / "x.png", noise_image(64))))


@pytest.mark.parametrize("shape", [(64, 64), (100, 66), (97, 131), (512, 768)])
def test_magnitude_spectrum_matches_numpy_fft(nb, shape):
    grey = np.random.default_rng(3).random(shape, np.float32) * 255
    even = grey[: shape[0] // 2 * 2, : shape[1] // 2 * 2].astype(np.float64)
    reference = np.abs(np.fft.rfft2(even))
    magnitude = nb.magnitude_spectrum(grey)
    assert magnitude.shape == reference.shape and magnitude.dtype == np.float32
    np.testing.assert_allclose(magnitude, reference, rtol=1e-3, atol=1e-6 * reference.max())


def test_periodogram_is_the_decibels_of_the_normalised_magnitude(nb):
    """periodogram_db takes OpenCV's natural log for speed; it must still give 20·log10(|F| / sqrt(HW) + 1e-6)."""
    grey = np.random.default_rng(4).random((98, 130), np.float32) * 255
    magnitude = np.abs(np.fft.rfft2(grey.astype(np.float64))) / np.sqrt(grey.size)
    power = nb.periodogram_db(grey)
    assert power.dtype == np.float32
    np.testing.assert_allclose(power, 20 * np.log10(magnitude + 1e-6), rtol=0, atol=2e-3)


def test_padded_rows_are_an_odd_number_of_cache_lines_apart(nb):
    for width in (1, 16, 17, 1000, 1008, 1024, 4096):
        array = nb.padded_rows(3, width)
        lines, rest = divmod(array.strides[0], 64)
        assert array.shape == (3, width) and array.dtype == np.float32
        assert rest == 0 and lines % 2 == 1 and array.strides[0] >= 4 * width


def test_the_padded_transform_gives_the_bits_of_a_contiguous_one(nb):
    """The padding changes where the DFT's rows sit in memory, never what it computes."""
    grey = np.random.default_rng(5).random((1024, 1024), np.float32) * 255
    packed = cv2.dft(grey, dst=nb.padded_rows(*grey.shape))
    assert packed.strides[0] > 4 * grey.shape[1]  # OpenCV wrote into the padded layout
    np.testing.assert_array_equal(packed, cv2.dft(grey))


def test_the_spectrum_does_not_depend_on_where_the_image_sits_in_memory(nb):
    grey = nb.to_grey(noise_image(200, seed=3))
    spectra = []
    for offset in (0, 4, 8, 16, 32):  # byte offsets: every SIMD alignment of a float32 row
        buffer = np.empty(grey.nbytes + 64, np.uint8)
        moved = buffer[offset:offset + grey.nbytes].view(np.float32).reshape(grey.shape)
        moved[...] = grey
        spectra.append(nb.magnitude_spectrum(moved))
    for spectrum in spectra[1:]:
        np.testing.assert_array_equal(spectrum, spectra[0])


def test_features_describe_the_shape_of_the_spectrum_not_its_level(nb):
    """Doubling the contrast adds 20·log10(2) dB to every frequency; the centred features stay put."""
    grey = nb.to_grey(noise_image(128, seed=4))
    settings = nb.feature_settings("both")
    np.testing.assert_allclose(nb.spectral_features(2 * grey, settings), nb.spectral_features(grey, settings),
                               atol=1e-3)


def test_the_cache_of_frequency_bins_stays_bounded_over_many_image_shapes(nb):
    """Random crops and downscales give a new shape per training view; memory must not follow."""
    settings = nb.feature_settings("both")
    for side in range(64, 264, 2):  # 100 shapes: odd sides would lose their last row and column
        nb.spectral_features(np.ones((side, side + 2), np.float32), settings)
    assert len(nb.FREQUENCY_BINS) == 64


def test_a_file_is_decoded_in_colour_only_for_views_small_enough(nb, tmp_path, monkeypatch):
    path = tmp_path / "face.jpg"
    cv2.imwrite(str(path), noise_image(700, seed=5))
    settings, decode, decoded = nb.feature_settings(), nb.decode_image, []
    monkeypatch.setattr(nb, "decode_image", lambda raw, grey=False: decoded.append(grey) or decode(raw, grey))
    _, _, features = nb.file_features((str(path), [0, 1], ["original", "crop680"], settings, None))
    assert decoded == [True] and (features[:, -88:] == 0).all()
    decoded.clear()
    views = ["original", "down0.5", "jpeg90+down0.75"]
    _, _, features = nb.file_features((str(path), [0, 1, 2], views, settings, None))
    assert decoded == [True, False]  # one colour decode serves both small views
    colour = decode(path.read_bytes())
    for row, view in [(1, "down0.5"), (2, "jpeg90+down0.75")]:
        np.testing.assert_array_equal(features[row, -88:], nb.colour_features(nb.apply_view(colour, view)))
    assert (features[0, -88:] == 0).all()


def test_to_uint8_scales_every_depth_to_eight_bits(nb):
    np.testing.assert_array_equal(nb.to_uint8(np.array([0, 257, 65535], np.uint16)), [0, 1, 255])
    np.testing.assert_array_equal(nb.to_uint8(np.array([-0.5, 0.5, 1.0, 2.0], np.float32)), [0, 128, 255, 255])
