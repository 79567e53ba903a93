"""A synthetic poster set built from scikit-image's own sample images.

Faces are crops of ``skimage.data.astronaut()`` (the face box YuNet finds there),
pasted on two-colour gradient backgrounds with a few coloured blocks for texture.
Ratings are made up by a known rule (more faces and cooler, darker posters score a
little higher, plus noise), so the analysis has something real to find. Nothing here
is real movie data and every output says so.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

POSTER_W, POSTER_H = 182, 268  # the size of the IMDB posters the project was built on
FACE_BOX = (30, 200, 150, 300)  # rows, cols of the astronaut's face with some margin
GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller")


def synthetic_poster(rng: np.random.Generator, faces: int) -> np.ndarray:
    """One uint8 RGB poster (268x182) with ``faces`` astronaut faces on a gradient."""
    from skimage import data
    from skimage.transform import resize

    top, bottom = rng.random(3), rng.random(3)
    t = np.linspace(0.0, 1.0, POSTER_H)[:, None, None]
    poster = (1 - t) * top + t * bottom
    poster = np.broadcast_to(poster, (POSTER_H, POSTER_W, 3)).copy()
    for _ in range(int(rng.integers(1, 5))):  # blocks: texture, and edges for HOG
        h, w = (int(v) for v in rng.integers(10, 60, size=2))
        y, x = int(rng.integers(0, POSTER_H - h)), int(rng.integers(0, POSTER_W - w))
        poster[y:y + h, x:x + w] = rng.random(3)
    r0, r1, c0, c1 = FACE_BOX
    face = data.astronaut()[r0:r1, c0:c1] / 255.0
    slots = _slots(rng, faces)
    for (y, x), size in slots:
        scaled = resize(face, (int(size * 1.2), size), anti_aliasing=True)
        poster[y:y + scaled.shape[0], x:x + scaled.shape[1]] = scaled
    return (np.clip(poster, 0, 1) * 255).round().astype(np.uint8)


def _slots(rng: np.random.Generator, faces: int) -> list[tuple[tuple[int, int], int]]:
    """Non-overlapping places for the faces: a grid of cells, one face per cell."""
    if faces == 0:
        return []
    cells = [(r, c) for r in range(2) for c in range(2)]
    chosen = rng.permutation(len(cells))[:faces]
    out = []
    for i in chosen:
        r, c = cells[int(i)]
        size = int(rng.integers(55, 80))
        y = 20 + r * 120 + int(rng.integers(0, 120 - int(size * 1.2) + 10))
        x = 5 + c * 88 + int(rng.integers(0, max(1, 88 - size - 5)))
        out.append(((min(y, POSTER_H - int(size * 1.2)), min(x, POSTER_W - size)), size))
    return out


def synthetic_rating(rng: np.random.Generator, poster: np.ndarray, faces: int) -> float:
    """The made-up rule: +0.4 per face, darker and bluer is better, plus noise."""
    rgb = poster / 255.0
    brightness = float(rgb.mean())
    blueness = float(rgb[..., 2].mean() - rgb[..., 0].mean())
    score = 6.0 + 0.4 * faces - 1.5 * (brightness - 0.5) + 1.0 * blueness
    return float(np.clip(round(score + rng.normal(0, 0.5), 1), 1.0, 10.0))


def make_demo_set(out_dir: Path, n: int, *, seed: int = 0) -> Path:
    """Write ``n`` synthetic posters and their manifest into ``out_dir``; return the manifest."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    poster_dir = out_dir / "posters"
    poster_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "index.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["imdbId", "Title", "IMDB Score", "Genre", "poster_file"])
        for i in range(n):
            faces = int(rng.choice([0, 1, 2, 3, 4], p=[0.25, 0.3, 0.2, 0.15, 0.1]))
            poster = synthetic_poster(rng, faces)
            rating = synthetic_rating(rng, poster, faces)
            movie_id = 9_000_000 + i
            buf = io.BytesIO()
            Image.fromarray(poster).save(buf, format="JPEG", quality=90)
            (poster_dir / f"{movie_id}.jpg").write_bytes(buf.getvalue())
            genres = "|".join(sorted(rng.choice(GENRES, size=int(rng.integers(1, 3)),
                                                replace=False)))
            writer.writerow([movie_id, f"Synthetic poster {i + 1} (demo)", rating, genres,
                             f"posters/{movie_id}.jpg"])
    return manifest
