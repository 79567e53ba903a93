"""Texture, shape and layout features of a grey image: HOG, LBP, edges, entropy, SIFT
keypoints, centre of brightness and the rule of thirds.

Every function takes a 2-D grey image (float in [0, 1] or an integer dtype) of at least
16x16 pixels and is vectorised over pixels.
"""

from __future__ import annotations

import numpy as np
from skimage import feature, filters, transform

from posterlab.imaging._validate import float_grey, positive_float, positive_int, to_ubyte

THIRDS_BAND = 1.0 / 18.0  # half-width of a thirds band: bands cover 1/9 of each side


def hog_vector(grey: np.ndarray, *, shape: tuple[int, int] = (128, 80), cell: int = 16,
               block: int = 2, orientations: int = 9) -> np.ndarray:
    """HOG of the image resampled to a fixed ``shape``, so every image gives one length.

    Parameters
    ----------
    grey : numpy.ndarray
        (H, W) grey image.
    shape : tuple of int, optional
        (rows, cols) the image is resampled to (bilinear, anti-aliased when shrinking).
    cell, block, orientations : int, optional
        Pixels per square cell, cells per square block, orientation bins (L2-Hys norm).

    Returns
    -------
    numpy.ndarray
        float64 of length :func:`hog_length` (1008 at the defaults).

    Examples
    --------
    >>> hog_vector(np.zeros((40, 30)), shape=(32, 32), cell=16, block=2).shape
    (36,)
    """
    grey = float_grey(grey, "grey")
    length = hog_length(shape, cell=cell, block=block, orientations=orientations)
    rows, cols = (int(side) for side in shape)
    if grey.shape != (rows, cols):
        shrinking = grey.shape[0] > rows or grey.shape[1] > cols
        grey = transform.resize(grey, (rows, cols), order=1, mode="edge",
                                anti_aliasing=shrinking, preserve_range=True)
    out = feature.hog(grey, orientations=orientations, pixels_per_cell=(cell, cell),
                      cells_per_block=(block, block), block_norm="L2-Hys",
                      feature_vector=True)
    if out.shape != (length,):  # hog_length is what storage relies on; never drift silently
        raise RuntimeError(f"HOG gave {out.shape[0]} values where {length} were documented")
    return out


def hog_length(shape: tuple[int, int], *, cell: int = 16, block: int = 2,
               orientations: int = 9) -> int:
    """Length of :func:`hog_vector` for a geometry.

    Examples
    --------
    >>> hog_length((128, 80))
    1008
    """
    cell = positive_int(cell, "cell")
    block = positive_int(block, "block")
    orientations = positive_int(orientations, "orientations")
    if len(shape) != 2:
        raise ValueError(f"shape must be (rows, cols), got {shape!r}")
    cells = [positive_int(side, "shape", minimum=1) // cell for side in shape]
    if min(cells) < block:
        raise ValueError(f"shape {tuple(shape)} holds fewer than {block} cells of {cell} px "
                         "on a side; no HOG block fits")
    blocks = [n - block + 1 for n in cells]
    return blocks[0] * blocks[1] * block * block * orientations


def lbp_histogram(grey: np.ndarray, *, points: int = 8, radius: float = 1.0) -> np.ndarray:
    """Normalised histogram of rotation-invariant uniform LBP codes.

    Codes 0..P are the uniform patterns (P = all neighbours at least as bright as the
    centre, as on a flat area), P + 1 collects the rest. Pixels closer than ``radius``
    to the border are not counted.

    Parameters
    ----------
    grey : numpy.ndarray
        (H, W) grey image; quantised to uint8 first, as LBP compares integer levels.
    points, radius : int, float, optional
        Neighbours P on a circle of radius R.

    Returns
    -------
    numpy.ndarray
        float64 of length ``points + 2``, summing to 1.

    Examples
    --------
    >>> lbp_histogram(np.full((16, 16), 0.5)).tolist()[8]
    1.0
    """
    grey = float_grey(grey, "grey")
    points = positive_int(points, "points", minimum=4)
    radius = positive_float(radius, "radius")
    codes = feature.local_binary_pattern(to_ubyte(grey), points, radius, method="uniform")
    # skimage samples outside the image as black; those border codes describe the
    # padding, not the poster, so they are left out.
    margin = int(np.ceil(radius))
    inner = codes[margin:-margin, margin:-margin]
    if inner.size == 0:
        raise ValueError(f"radius {radius} leaves no pixel inside a {grey.shape} image")
    return np.bincount(inner.astype(np.intp).ravel(), minlength=points + 2) / inner.size


def edge_density(grey: np.ndarray, *, sigma: float = 1.0) -> float:
    """Share of pixels on a Canny edge (skimage's default thresholds).

    Examples
    --------
    >>> edge_density(np.zeros((16, 16)))
    0.0
    """
    grey = float_grey(grey, "grey")
    sigma = positive_float(sigma, "sigma")
    return float(feature.canny(grey, sigma=sigma).mean())


def shannon_entropy(grey: np.ndarray) -> float:
    """Shannon entropy in bits of the 256-level (uint8) grey image.

    Same value as ``skimage.measure.shannon_entropy`` on the uint8 image, counted with
    ``np.bincount`` instead of ``np.unique`` (a sort), so about ten times faster.

    Examples
    --------
    >>> shannon_entropy(np.repeat([[0.0, 1.0]], 16, axis=0).repeat(8, axis=1))
    1.0
    """
    levels = to_ubyte(float_grey(grey, "grey")).ravel()
    counts = np.bincount(levels, minlength=256)
    p = counts[counts > 0] / levels.size
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def sift_keypoint_count(grey: np.ndarray, *, upsampling: int = 1, n_octaves: int = 3) -> int:
    """Number of SIFT keypoints ``skimage.feature.SIFT`` detects.

    Parameters
    ----------
    grey : numpy.ndarray
        (H, W) grey image.
    upsampling : int, optional
        1, 2 or 4; skimage's default 2 doubles the image first (and triples the cost).
    n_octaves : int, optional
        Octaves of the scale space (skimage lowers it for small images).

    Returns
    -------
    int
        0 for an image without keypoints.

    Examples
    --------
    >>> sift_keypoint_count(np.zeros((32, 32)))
    0
    """
    grey = float_grey(grey, "grey")
    upsampling = positive_int(upsampling, "upsampling")
    if upsampling not in (1, 2, 4):
        raise ValueError(f"upsampling must be 1, 2 or 4, got {upsampling}")
    n_octaves = positive_int(n_octaves, "n_octaves")
    detector = feature.SIFT(upsampling=upsampling, n_octaves=n_octaves)
    try:
        detector.detect(grey)
    except RuntimeError as exc:
        if "no features" in str(exc):  # skimage's way of saying zero
            return 0
        raise
    return len(detector.keypoints)


def centre_of_mass(grey: np.ndarray) -> tuple[float, float]:
    """Brightness-weighted centre (x, y), each in [0, 1] from the left and top edges.

    Pixel centres sit at ``(j + 0.5) / W`` and ``(i + 0.5) / H``; an all-black image,
    which has no brightness to weigh, gives the middle (0.5, 0.5).

    Examples
    --------
    >>> image = np.zeros((16, 16)); image[:, 12:] = 1.0
    >>> centre_of_mass(image)
    (0.875, 0.5)
    """
    grey = float_grey(grey, "grey")
    total = grey.sum()
    if total <= 0:
        return 0.5, 0.5
    rows, cols = grey.shape
    x = (np.arange(cols) + 0.5) / cols
    y = (np.arange(rows) + 0.5) / rows
    return float(grey.sum(axis=0) @ x / total), float(grey.sum(axis=1) @ y / total)


def thirds(grey: np.ndarray) -> float:
    """Rule of thirds: share of the edge energy that lies on the thirds lines.

    Edge energy is the Sobel gradient magnitude; the thirds lines are the bands of half
    width 1/18 of the side around x = 1/3, x = 2/3, y = 1/3 and y = 2/3 (their union
    covers 40% of the picture, so evenly spread structure scores about 0.40). A flat
    image, with no structure to place, scores 0.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> image = np.zeros((36, 36)); image[:, 12:] = 1.0  # an edge on x = 1/3
    >>> thirds(image)
    1.0
    """
    grey = float_grey(grey, "grey")
    energy = filters.sobel(grey)
    total = energy.sum()
    if total <= 0:
        return 0.0
    rows, cols = grey.shape
    on_x = _near_thirds((np.arange(cols) + 0.5) / cols)
    on_y = _near_thirds((np.arange(rows) + 0.5) / rows)
    inside = on_y[:, None] | on_x[None, :]
    return float(min(energy[inside].sum() / total, 1.0))


def _near_thirds(position: np.ndarray) -> np.ndarray:
    distance = np.minimum(np.abs(position - 1 / 3), np.abs(position - 2 / 3))
    # The tiny slack keeps a band edge that falls exactly on a pixel centre inside.
    return distance <= THIRDS_BAND + 1e-9
