"""Duplicate and leakage audit: exact and near-duplicate images within and across splits.

An exact duplicate has the same bytes (md5 of the pixels). A near duplicate has a
perceptual hash (``imagehash.phash``: the sign pattern of the low frequencies of the
image's DCT, 64 bits) within ``max_distance`` bits of another's, so re-encoding, small
shifts of brightness or noise keep it, while different cells differ in about half the
bits. The finder compares every pair of hashes by Hamming distance in blocks (17,000
images are 145 million pairs, a few seconds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import imagehash
import numpy as np
import pandas as pd
from PIL import Image

#: rows of hashes compared against all others at once (memory: block x n x 8 bytes)
BLOCK = 1024


def _rgb(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image if image.ndim == 3 else image[..., None].repeat(3, axis=2))


def perceptual_hashes(images: np.ndarray, hash_size: int = 8) -> np.ndarray:
    """The ``phash`` of each image (N, H, W[, C] uint8) as an unsigned 64-bit integer."""
    if images.ndim not in (3, 4) or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W) or (N, H, W, C); got {images.dtype} {images.shape}")
    if hash_size != 8:
        raise ValueError(f"hash_size {hash_size} does not fit 64 bits; use 8")
    bits = np.stack([imagehash.phash(_rgb(image), hash_size).hash.ravel() for image in images])
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def exact_hashes(images: np.ndarray) -> np.ndarray:
    """The md5 of each image's pixels, as text."""
    return np.array([hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest() for image in images])


def near_duplicates(splits: Mapping[str, np.ndarray], max_distance: int = 4) -> pd.DataFrame:
    """Every pair of images (in one split or across two) whose perceptual hashes differ in
    at most ``max_distance`` bits: columns ``split_a``, ``index_a``, ``split_b``,
    ``index_b``, ``distance`` (bits) and ``exact`` (the same pixels). Each pair once, in
    the order of ``splits`` (train before test, then by index)."""
    if not 0 <= max_distance <= 64:
        raise ValueError(f"max_distance is a number of bits out of 64; got {max_distance}")
    names = np.concatenate([[name] * len(images) for name, images in splits.items()])
    index = np.concatenate([np.arange(len(images)) for images in splits.values()])
    hashes = np.concatenate([perceptual_hashes(images) for images in splits.values()])
    md5 = np.concatenate([exact_hashes(images) for images in splits.values()])
    found = []
    for start in range(0, len(hashes), BLOCK):
        distance = np.bitwise_count(hashes[start : start + BLOCK, None] ^ hashes[None, :])
        rows, cols = np.nonzero(distance <= max_distance)
        rows = rows + start
        keep = cols > rows
        found.append((rows[keep], cols[keep], distance[rows[keep] - start, cols[keep]]))
    a, b, d = (np.concatenate(parts) for parts in zip(*found, strict=True))
    return pd.DataFrame({"split_a": names[a], "index_a": index[a], "split_b": names[b], "index_b": index[b],
                         "distance": d.astype(int), "exact": md5[a] == md5[b]})  # fmt: skip


def summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs per pair of splits: near duplicates and how many of them are exact."""
    grouped = pairs.groupby(["split_a", "split_b"], sort=False)["exact"]
    return grouped.agg(pairs="size", exact="sum").reset_index()


def leaked(pairs: pd.DataFrame, split: str, others: tuple[str, ...] = ("train", "val")) -> np.ndarray:
    """Indices of ``split`` with a near duplicate in any of ``others`` (sorted, once each):
    drop them for a de-duplicated evaluation."""
    a = pairs[(pairs["split_a"] == split) & pairs["split_b"].isin(others)]["index_a"]
    b = pairs[(pairs["split_b"] == split) & pairs["split_a"].isin(others)]["index_b"]
    return np.unique(np.concatenate([a.to_numpy(), b.to_numpy()])).astype(int)
