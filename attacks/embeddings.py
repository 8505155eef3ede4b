"""Word embeddings for offline word-substitution attacks, from locally available parts."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from attacks.textattack_env import load_textattack

_WHOLE_WORD = re.compile(r"^[a-z]{2,}$")


def model_word_embedding(classifier: Any, *, neighbours: int = 50, chunk: int = 2048) -> Any:
    """A TextAttack ``WordEmbedding`` from the classifier's own input-token embeddings.

    The vocabulary is the tokenizer's whole-word entries (lower-case alphabetic, two letters or
    more, no ``##`` pieces); neighbours are the ``neighbours`` nearest by cosine similarity,
    precomputed in chunks. These neighbours stand in for the counter-fitted embeddings the
    published TextFooler and A2T download: they are related words, not vetted synonyms, so
    the word-embedding and sentence-similarity constraints carry more of the weight.
    """
    textattack = load_textattack()
    vocab = classifier.tokenizer.get_vocab()
    words = sorted((w for w in vocab if _WHOLE_WORD.match(w)), key=lambda w: vocab[w])
    weights = classifier.model.get_input_embeddings().weight.detach().cpu().numpy()
    matrix = weights[[vocab[w] for w in words]].astype(np.float32)
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    k = min(neighbours + 1, len(words))
    nn = np.empty((len(words), k), dtype=np.int64)
    for start in range(0, len(words), chunk):
        sims = unit[start : start + chunk] @ unit.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(sims, top, axis=1).argsort(axis=1)[:, ::-1]
        nn[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    word2index = {w: i for i, w in enumerate(words)}
    index2word = dict(enumerate(words))
    return textattack.shared.WordEmbedding(matrix, word2index, index2word, nn_matrix=nn)
