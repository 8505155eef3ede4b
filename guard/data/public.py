"""Public labelled text that ships inside a package, read in place (never bundled here).

**Movie-review polarity** (Pang & Lee 2005, "MR", the Rotten Tomatoes snippets of the
sentence-polarity data set v1.0): the source distribution of ``vaderSentiment`` 3.3.2 (MIT
package) carries the 10,605 snippets in ``additional_resources/hutto_ICWSM_2014.tar.gz``
(``movieReviewSnippets_GroundTruth.txt``, with VADER's human ratings). Ids 1-5152 are the
positive file's sentences and the rest the negative file's, which gives MR's own labels. The
data set states no licence of its own, so the project does not redistribute it: fetch the
sdist yourself (``pip download --no-deps --no-binary :all: vaderSentiment==3.3.2``) and pass
its path. No one in this project wrote or labelled these sentences, and they were not used to
build any bundled model, which makes them a fair test of the hardening recipes
(``benchmarks/hardening.py --movie-reviews``).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np

from guard.data.loader import DataSplits, TextDataset
from guard.errors import DataError

#: SHA-256 of ``vaderSentiment-3.3.2.tar.gz`` as PyPI serves it.
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
_INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
_SNIPPETS = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
_LAST_POSITIVE_ID = 5152


def load_movie_reviews(sdist: str | Path, *, verify: bool = True) -> TextDataset:
    """All MR snippets with their polarity (``positive`` / ``negative``), in file order.

    Args:
        sdist: Path of ``vaderSentiment-3.3.2.tar.gz``.
        verify: Check the file's SHA-256 against PyPI's (off only for test fixtures).

    Raises:
        DataError: If the file is missing, is not that sdist, or lacks the snippets.
    """
    path = Path(sdist)
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the vaderSentiment sdist ({exc}); get it with "
                        "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2",
                        path=str(path)) from exc
    if verify and hashlib.sha256(payload).hexdigest() != VADER_SDIST_SHA256:
        raise DataError(f"{path}: not the vaderSentiment 3.3.2 sdist (SHA-256 differs)",
                        path=str(path))
    try:
        with tarfile.open(fileobj=io.BytesIO(payload)) as outer:
            inner = _member(outer, _INNER_ARCHIVE)
        with tarfile.open(fileobj=io.BytesIO(inner)) as archive:
            raw = _member(archive, _SNIPPETS).decode("utf-8")
    except (tarfile.TarError, KeyError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: no movie-review snippets inside ({exc})",
                        path=str(path)) from exc
    texts, labels = [], []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3 or not parts[0].isdigit():
            raise DataError(f"{path}: line {number} of {_SNIPPETS} is not 'id<TAB>rating<TAB>"
                            "text'", path=str(path))
        texts.append(parts[2].strip())
        labels.append("positive" if int(parts[0]) <= _LAST_POSITIVE_ID else "negative")
    return TextDataset.from_rows(texts, labels, source=f"{path}#movie-reviews")


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    handle = archive.extractfile(name)
    if handle is None:
        raise KeyError(f"{name} is not a file")
    return handle.read()


def movie_review_splits(sdist: str | Path, *, train: int = 1000, validation: int = 500,
                        test: int = 1000, seed: int = 0, verify: bool = True,
                        rest_to_train: bool = False) -> DataSplits:
    """Disjoint random train / validation / test samples of MR.

    Args:
        sdist: Path of ``vaderSentiment-3.3.2.tar.gz``.
        train: Training rows.
        validation: Validation rows.
        test: Test rows.
        seed: Seed of the shuffle that the three samples are cut from.
        verify: As for :func:`load_movie_reviews`.
        rest_to_train: Also train on every row the three samples leave over. The samples
            are cut as without it, so validation and test stay the same rows and a
            full-data model is measured on the same sentences as a ``train``-row one.

    Raises:
        DataError: If the sizes exceed the data or the file is unusable.
    """
    data = load_movie_reviews(sdist, verify=verify)
    sizes = (train, validation, test)
    if min(sizes) < 1 or sum(sizes) > len(data):
        raise DataError(f"split sizes {sizes} must be positive and sum to at most "
                        f"{len(data)} rows")
    order = np.random.default_rng(seed).permutation(len(data))
    parts = []
    start = 0
    for name, size in zip(("train", "validation", "test"), sizes, strict=True):
        rows = order[start : start + size]
        start += size
        label = name
        if name == "train" and rest_to_train:
            rows = np.concatenate([rows, order[sum(sizes):]])
            label = "train+rest"
        parts.append(TextDataset.from_rows([data.texts[i] for i in rows],
                                           [data.labels[i] for i in rows],
                                           source=f"{data.source}:{label}:seed{seed}"))
    digest = hashlib.sha256("".join(p.sha256 for p in parts).encode()).hexdigest()
    return DataSplits(parts[0], parts[1], parts[2], tuple(sorted(set(data.labels))), digest)
