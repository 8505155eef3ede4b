"""Tiny word-vector tables for the substitution-defence tests."""

from __future__ import annotations

import numpy as np


def unit_rows(rows: list[list[float]]) -> np.ndarray:
    """``rows`` as a float32 matrix with each row scaled to unit length."""
    matrix = np.asarray(rows, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def nearest_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row's rows by decreasing cosine, itself first (the ``nn`` of word vectors)."""
    sims = matrix @ matrix.T
    np.fill_diagonal(sims, np.inf)
    return np.argsort(-sims, axis=1)
