"""Convert alt-profanity-check's scikit-learn model into the plain arrays the default scorer reads.

alt-profanity-check (MIT) ships a TF-IDF vectoriser and a CalibratedClassifierCV over LinearSVC
as joblib pickles. This script unpickles them once, on a developer's machine, from the wheel
(pip download --no-deps alt-profanity-check==1.9.1) and writes:

* ``vocab.json``: token -> column;
* ``weights.safetensors``: ``idf``, ``coef`` (folds x vocab), ``intercept``, ``calib_a``,
  ``calib_b`` (Platt sigmoid per fold), all float64;

so the shipped scorer needs neither scikit-learn nor pickle. Usage:

    python scripts/convert_profanity_check.py path/to/profanity_check/data OUT_DIR

It needs the scikit-learn and joblib versions the wheel pins (1.9.1 and 1.6.0 for 1.9.1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
import numpy as np
from safetensors.numpy import save_file


def main(data_dir: str, out_dir: str) -> None:
    """Convert the joblib files in ``data_dir`` into ``out_dir``."""
    vectorizer = joblib.load(Path(data_dir) / "vectorizer.joblib")
    model = joblib.load(Path(data_dir) / "model.joblib")
    params = vectorizer.get_params()
    expected = {"analyzer": "word", "lowercase": True, "ngram_range": (1, 1), "norm": "l2",
                "use_idf": True, "smooth_idf": True, "sublinear_tf": False,
                "token_pattern": r"(?u)\b\w\w+\b", "binary": False}
    for key, value in expected.items():
        if params[key] != value:
            raise SystemExit(f"vectoriser {key}={params[key]!r}, the scorer assumes {value!r}")
    if list(model.classes_) != [0, 1]:
        raise SystemExit(f"unexpected classes {model.classes_}")
    folds = model.calibrated_classifiers_
    coef = np.vstack([f.estimator.coef_[0] for f in folds])
    intercept = np.array([f.estimator.intercept_[0] for f in folds])
    calib_a = np.array([f.calibrators[0].a_ for f in folds])
    calib_b = np.array([f.calibrators[0].b_ for f in folds])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {token: int(index) for token, index in vectorizer.vocabulary_.items()}
    (out / "vocab.json").write_text(json.dumps(vocab, sort_keys=True, ensure_ascii=False))
    save_file({"idf": vectorizer.idf_.astype(np.float64), "coef": coef.astype(np.float64),
               "intercept": intercept, "calib_a": calib_a, "calib_b": calib_b},
              str(out / "weights.safetensors"))
    # Reference scores for the equivalence test.
    probe = ["you are an idiot", "have a nice day", "shut up you stupid loser",
             "the museum opens at nine", "what the hell is this crap", ""]
    reference = model.predict_proba(vectorizer.transform(probe))[:, 1]
    (out / "reference_scores.json").write_text(json.dumps(
        {"texts": probe, "scores": [float(s) for s in reference]}, indent=2))
    print(f"wrote {out}: vocab {len(vocab)}, folds {len(folds)}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
