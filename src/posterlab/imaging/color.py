"""Colour features: HSV, channel moments, colorfulness, histograms, dominant colours.

All functions take float images in [0, 1] (or any integer dtype, scaled by its maximum)
and are vectorised over pixels.
"""

from __future__ import annotations

import numpy as np

from posterlab.imaging._validate import float_grey, float_rgb, positive_int, to_ubyte

KMEANS_ITERATIONS = 30  # Lloyd steps; 2,000 poster pixels settle in ~10


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB to HSV, equal to :func:`skimage.color.rgb2hsv` and several times faster.

    Parameters
    ----------
    rgb : numpy.ndarray
        (H, W, 3) image, float in [0, 1] or an integer dtype.

    Returns
    -------
    numpy.ndarray
        (H, W, 3) float64; H in [0, 1) (0 for greys), S and V in [0, 1].

    Examples
    --------
    >>> rgb_to_hsv(np.tile([0.0, 0.0, 1.0], (16, 16, 1)))[0, 0].tolist()
    [0.6666666666666666, 1.0, 1.0]
    """
    rgb = float_rgb(rgb, "rgb")
    r, g, b = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    value = np.maximum(np.maximum(r, g), b)
    delta = value - np.minimum(np.minimum(r, g), b)
    grey = delta == 0
    safe_delta = np.where(grey, 1.0, delta)
    saturation = np.where(grey, 0.0, delta / np.where(value == 0, 1.0, value))
    # Same precedence as skimage when two channels tie for the maximum: blue, green, red.
    hue = np.where(b == value, 4.0 + (r - g) / safe_delta,
                   np.where(g == value, 2.0 + (b - r) / safe_delta, (g - b) / safe_delta))
    hue = np.where(grey, 0.0, (hue / 6.0) % 1.0)
    return np.stack([hue, saturation, value], axis=2)


def color_moments(rgb: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation of R, G, B, H, S and V.

    Hue is averaged arithmetically, as the course does (a red poster with hues at 0.02
    and 0.98 averages to 0.5); S and V make up for it.

    Parameters
    ----------
    rgb : numpy.ndarray
        (H, W, 3) image.

    Returns
    -------
    dict
        ``mean_r, mean_g, mean_b, mean_h, mean_s, mean_v, std_r, ..., std_v`` as floats.

    Examples
    --------
    >>> color_moments(np.full((16, 16, 3), 0.5))["mean_v"]
    0.5
    """
    rgb = float_rgb(rgb, "rgb")
    # channel-major (6, n) so each statistic reduces one contiguous row
    stacked = np.concatenate([rgb, rgb_to_hsv(rgb)], axis=2).reshape(-1, 6).T.copy()
    means, stds = stacked.mean(axis=1), stacked.std(axis=1)
    names = ("r", "g", "b", "h", "s", "v")
    return {**{f"mean_{n}": float(m) for n, m in zip(names, means, strict=True)},
            **{f"std_{n}": float(s) for n, s in zip(names, stds, strict=True)}}


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk's colorfulness, on the 0-255 scale of the paper.

    ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)`` with
    ``rg = R - G`` and ``yb = (R + G) / 2 - B``. Kept on the paper's scale so its reading
    guide applies: ~15 slightly, ~33 moderately, ~59 quite, ~82 highly colourful.

    Parameters
    ----------
    rgb : numpy.ndarray
        (H, W, 3) image.

    Returns
    -------
    float
        0 for any grey image; about 109 or more for the most colourful (a flat pure
        red scores only 85.5: colorfulness rewards variety as well as saturation).

    Examples
    --------
    >>> colorfulness(np.full((16, 16, 3), 0.3))
    0.0
    >>> round(colorfulness(np.tile([1.0, 0.0, 0.0], (16, 16, 1))), 1)
    85.5
    """
    rgb = float_rgb(rgb, "rgb") * 255.0
    rg = rgb[:, :, 0] - rgb[:, :, 1]
    yb = 0.5 * (rgb[:, :, 0] + rgb[:, :, 1]) - rgb[:, :, 2]
    spread = np.hypot(rg.std(), yb.std())
    centre = np.hypot(rg.mean(), yb.mean())
    return float(spread + 0.3 * centre)


def grey_histogram(grey: np.ndarray, bins: int = 20) -> np.ndarray:
    """Normalised histogram of the 256 grey levels grouped into ``bins`` even bins.

    Level ``l`` (0-255, the uint8 image) falls in bin ``l * bins // 256``.

    Parameters
    ----------
    grey : numpy.ndarray
        (H, W) grey image.
    bins : int, optional
        Number of bins, 2 to 256.

    Returns
    -------
    numpy.ndarray
        float64 of length ``bins``, summing to 1.

    Examples
    --------
    >>> grey_histogram(np.zeros((16, 16)), bins=4).tolist()
    [1.0, 0.0, 0.0, 0.0]
    """
    grey = float_grey(grey, "grey")
    bins = positive_int(bins, "bins", minimum=2)
    if bins > 256:
        raise ValueError(f"bins must be at most 256 (grey levels), got {bins}")
    index = to_ubyte(grey).ravel().astype(np.intp) * bins // 256
    return np.bincount(index, minlength=bins) / index.size


def channel_histograms(rgb: np.ndarray, bins: int = 16) -> np.ndarray:
    """Normalised R, G and B histograms over [0, 1], concatenated.

    Parameters
    ----------
    rgb : numpy.ndarray
        (H, W, 3) image.
    bins : int, optional
        Bins per channel.

    Returns
    -------
    numpy.ndarray
        float64 of length ``3 * bins``: R bins, then G, then B; each channel sums to 1.

    Examples
    --------
    >>> channel_histograms(np.ones((16, 16, 3)), bins=2).tolist()
    [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    """
    rgb = float_rgb(rgb, "rgb")
    bins = positive_int(bins, "bins", minimum=2)
    index = np.minimum((rgb.reshape(-1, 3) * bins).astype(np.intp), bins - 1)
    index += np.arange(3) * bins  # one bincount for the three channels
    return np.bincount(index.ravel(), minlength=3 * bins) / (index.shape[0])


def dominant_colors(rgb: np.ndarray, k: int = 5, *, sample: int = 2000,
                    rng: np.random.Generator | int = 0) -> np.ndarray:
    """The ``k`` dominant colours by k-means (k-means++ start) and their pixel shares.

    k-means is fitted on ``sample`` pixels drawn without replacement; the shares count
    every pixel. Colours are sorted by share, largest first. An image with fewer than
    ``k`` distinct colours gets repeated colours with a share of 0.

    Parameters
    ----------
    rgb : numpy.ndarray
        (H, W, 3) image.
    k : int, optional
        Number of colours.
    sample : int, optional
        Pixels used for fitting.
    rng : numpy.random.Generator or int, optional
        Random generator or seed; the same seed gives the same colours.

    Returns
    -------
    numpy.ndarray
        float64 (k, 4): r, g, b in [0, 1] and the share of pixels; shares sum to 1.

    Examples
    --------
    >>> image = np.zeros((16, 16, 3)); image[:4] = 1.0
    >>> dominant_colors(image, k=2).round(2).tolist()
    [[0.0, 0.0, 0.0, 0.75], [1.0, 1.0, 1.0, 0.25]]
    """
    pixels = float_rgb(rgb, "rgb").reshape(-1, 3)
    k = positive_int(k, "k")
    sample = positive_int(sample, "sample")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(positive_int(rng, "rng", minimum=0))
    fit = pixels
    if pixels.shape[0] > sample:
        fit = pixels[np.sort(rng.choice(pixels.shape[0], size=sample, replace=False))]
    centres = kmeans(fit, k, rng=rng)
    labels = _nearest(np.ascontiguousarray(pixels.T), centres)
    shares = np.bincount(labels, minlength=k) / pixels.shape[0]
    order = np.argsort(-shares, kind="stable")
    return np.column_stack([centres[order], shares[order]])


def kmeans(points: np.ndarray, k: int, *, rng: np.random.Generator,
           iterations: int = KMEANS_ITERATIONS) -> np.ndarray:
    """Lloyd's k-means with a k-means++ start, vectorised over points.

    Parameters
    ----------
    points : numpy.ndarray
        (n, d) float array, n >= 1.
    k : int
        Number of centres.
    rng : numpy.random.Generator
        Source of the k-means++ draws.
    iterations : int, optional
        Maximum Lloyd steps; stops earlier when the centres stop moving.

    Returns
    -------
    numpy.ndarray
        (k, d) centres. A centre left without points keeps its position.

    Examples
    --------
    >>> pts = np.array([[0.0], [0.1], [1.0], [1.1]])
    >>> np.sort(kmeans(pts, 2, rng=np.random.default_rng(0)), axis=0).round(2).tolist()
    [[0.05], [1.05]]
    """
    if not isinstance(points, np.ndarray) or points.ndim != 2 or points.shape[0] < 1:
        raise ValueError("points must be a non-empty (n, d) array")
    k = positive_int(k, "k")
    iterations = positive_int(iterations, "iterations")
    n = points.shape[0]
    columns = np.ascontiguousarray(points.T)  # (d, n): each pass below streams one channel
    centres = np.empty((k, points.shape[1]))
    centres[0] = points[rng.integers(n)]
    nearest_sq = _squared_distance(columns, centres[0])
    for i in range(1, k):  # loops over centres, never over pixels
        total = nearest_sq.sum()
        pick = rng.choice(n, p=nearest_sq / total) if total > 0 else rng.integers(n)
        centres[i] = points[pick]
        nearest_sq = np.minimum(nearest_sq, _squared_distance(columns, centres[i]))
    for _ in range(iterations):
        labels = _nearest(columns, centres)
        counts = np.bincount(labels, minlength=k)
        sums = np.stack([np.bincount(labels, weights=column, minlength=k)
                         for column in columns], axis=1)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
        if np.array_equal(moved, centres):
            break
        centres = moved
    return centres


def _squared_distance(columns: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Squared distance of every point of ``columns`` (d, n) to one centre (d,)."""
    total = (columns[0] - centre[0]) ** 2
    for column, value in zip(columns[1:], centre[1:], strict=True):
        total += (column - value) ** 2
    return total


def _nearest(columns: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for every point of ``columns`` (d, n); ties go first.

    One pass per centre over channel-major data: a few times faster than broadcasting
    an (n, k, d) array, and free of BLAS, whose summation order may vary with threads.
    """
    best = _squared_distance(columns, centres[0])
    labels = np.zeros(columns.shape[1], dtype=np.intp)
    for j in range(1, centres.shape[0]):
        distance = _squared_distance(columns, centres[j])
        closer = distance < best
        labels[closer] = j
        np.minimum(best, distance, out=best)
    return labels
