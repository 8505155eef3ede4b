"""The toxicity suite's arithmetic, on hand-built sets and fake scorers whose scores we choose."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from result_documents import results_dict

from eval_suites.obfuscate import (
    KNOWN_OBFUSCATORS,
    KNOWN_SHARE,
    OBFUSCATORS,
    REGISTRY,
    UNSEEN_OBFUSCATORS,
)
from eval_suites.stats import (
    ece_interval,
    expected_calibration_error,
    newcombe_difference,
    recall_at_fpr,
    roc_auc,
    roc_curve,
)
from eval_suites.toxicity import (
    IDENTITY_TEMPLATES,
    IdentityTemplates,
    ToxicitySuite,
    read_bundled_set,
    read_external_set,
)
from guard.data import TextDataset
from guard.errors import ConfigError, DataError
from guard.normalize import normalize
from guard.results import parse_results
from reports.html import render, roc_svg

# -- fakes ----------------------------------------------------------------------------------


class ConstantClassifier:
    """The assistant under test does not matter here: no responses.json, so no outputs."""

    labels = ("greeting", "refund")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.full((len(texts), 2), 0.5)


DATA = TextDataset.from_rows(["hello"], ["greeting"], source="mem")

# text -> (toxicity, threat, insult). Thresholds: toxicity 0.5, threat 0.3, insult 0.5.
HARMFUL: list[tuple[str, tuple[float, float, float], dict[str, int]]] = [
    ("you absolute idiot", (0.9, 0.0, 0.8), {"toxicity": 1, "insult": 1, "hate": 1}),
    ("what a pathetic moron", (0.8, 0.0, 0.7), {"toxicity": 1, "insult": 1, "hate": 1}),
    ("shut up loser", (0.6, 0.0, 0.2), {"toxicity": 1, "hate": 1}),
    ("nobody wants you here", (0.4, 0.1, 0.0), {"toxicity": 1, "hate": 1}),
    ("go away weirdo", (0.2, 0.0, 0.1), {"toxicity": 1, "hate": 1}),
    ("i will hurt you", (0.3, 0.7, 0.0), {"threat": 1}),
    ("watch your back tonight", (0.1, 0.2, 0.0), {"threat": 1}),
    ("i know where you live", (0.0, 0.5, 0.0), {"threat": 1}),
    ("you will regret this", (0.2, 0.35, 0.0), {"threat": 1}),
    ("meet me outside", (0.6, 0.9, 0.0), {"threat": 1, "toxicity": 1}),
]
BENIGN: list[tuple[str, tuple[float, float, float]]] = [
    ("welcome to the museum", (0.05, 0.0, 0.0)),
    ("the concert starts at nine", (0.1, 0.0, 0.0)),
    ("tickets are sold out", (0.0, 0.25, 0.0)),
    ("kill the process and restart", (0.3, 0.4, 0.0)),  # threat >= 0.3: a false alarm
    ("that boss fight was brutal", (0.55, 0.1, 0.0)),  # toxicity >= 0.5: a false alarm
    ("have a nice day", (0.0, 0.0, 0.0)),
    ("see you at the gallery", (0.0, 0.0, 0.0)),
    ("the tour was lovely", (0.0, 0.0, 0.0)),
    ("thanks for the help", (0.0, 0.0, 0.0)),
    ("the garden looks great", (0.0, 0.0, 0.0)),
]


class TableScorer:
    """Scores looked up by (normalised) text; any other text scores 0 in every category."""

    categories = ("toxicity", "threat", "insult")

    def __init__(self) -> None:
        self.thresholds = {"toxicity": 0.5, "threat": 0.3, "insult": 0.5}
        rows = [(t, s) for t, s, _ in HARMFUL] + BENIGN
        self.table = {normalize(text).text: scores for text, scores in rows}

    def score(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        values = np.array([self.table.get(t, (0.0, 0.0, 0.0)) for t in texts])
        return {c: values[:, k] for k, c in enumerate(self.categories)}


class KeywordScorer:
    """Toxicity 0.9 for any text containing one of ``words`` after normalisation, else 0."""

    categories = ("toxicity",)

    def __init__(self, *words: str) -> None:
        self.words = words

    def score(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return {"toxicity": np.array([0.9 if any(w in t for w in self.words) else 0.0
                                      for t in texts])}


class NotPlainScorer:
    """Toxicity 0.9 for any text that does not normalise to one of ``plain``, else 0."""

    categories = ("toxicity",)

    def __init__(self, plain: Sequence[str]) -> None:
        self.plain = {normalize(t).text for t in plain} | {normalize("hello there").text}

    def score(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return {"toxicity": np.array([0.0 if t in self.plain else 0.9 for t in texts])}


def _write_external(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _table_rows() -> list[dict[str, Any]]:
    return ([{"text": t, "harmful": 1, "labels": labels, "source": "hand", "kind": "insult"}
             for t, _, labels in HARMFUL]
            + [{"text": t, "harmful": 0, "labels": {}, "source": "hand", "kind": "benign"}
               for t, _ in BENIGN])


def _run(monkeypatch: pytest.MonkeyPatch, scorer: Any, **options: Any) -> Any:
    monkeypatch.setattr("guard.scorers.build_scorer", lambda name, **kw: scorer)
    options.setdefault("bootstrap_resamples", 200)
    return ToxicitySuite(**options).run(ConstantClassifier(), DATA, seed=0)


# -- the external set's metrics -------------------------------------------------------------


def test_external_metrics_match_the_hand_computed_values(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _write_external(tmp_path / "external.jsonl", _table_rows())
    result = _run(monkeypatch, TableScorer(), external_data=str(path))
    metric = result.metric
    assert result.details["thresholds"] == {"toxicity": 0.5, "threat": 0.3, "insult": 0.5}
    # flagged harmful: rows 1, 2, 3, 6, 8, 9, 10 (any category at its threshold) -> 7 / 10
    assert metric("external_recall").value == pytest.approx(0.7)
    assert metric("external_recall").n == 10
    # false alarms: "kill the process" (threat 0.4) and "boss fight" (toxicity 0.55) -> 2 / 10
    assert metric("external_fpr_benign").value == pytest.approx(0.2)
    # harm = max over categories; pairs (harmful > benign, ties half) 89.5 of 100
    assert metric("external_roc_auc").value == pytest.approx(0.895)
    # 2% of 10 benign rows allows 0 false alarms: threshold just above 0.55 (the highest
    # benign score); harm scores above it: 0.9, 0.8, 0.6, 0.7, 0.9 -> 5 / 10
    assert metric("external_recall_at_2pct_fpr").value == pytest.approx(0.5)
    assert result.details["external_recall_at_2pct_fpr_threshold"] == pytest.approx(0.6)
    # ECE, 10 bins of the harm score: sum over bins of |sum(labels) - sum(scores)| / 20
    # = (0.05 + 0.1 + 1.35 + 0.65 + 0.2 + 0.05 + 0.4 + 0.3 + 0.2 + 0.2) / 20
    assert metric("external_ece").value == pytest.approx(3.5 / 20)
    # per category: positives against the 10 benign rows on that category's score
    assert metric("external_roc_auc/toxicity").value == pytest.approx(57 / 60)
    assert metric("external_roc_auc/toxicity").n == 16
    assert metric("external_roc_auc/threat").value == pytest.approx(47 / 50)
    names = {m.name for m in result.metrics}
    assert "external_roc_auc/insult" not in names  # 2 positives < 5
    assert "external_roc_auc/hate" not in names  # 5 positives, but the scorer lacks it
    by_category = result.details["external_by_category"]
    assert by_category["hate"]["positives"] == 5 and "does not report" in \
        by_category["hate"]["roc_auc"]
    assert "fewer than 5" in by_category["insult"]["roc_auc"]
    for m in result.metrics:
        assert m.ci_low <= m.value <= m.ci_high and m.n > 0
    # worst examples: missed harmful lowest score first, false alarms highest first
    missed = [e["text"] for e in result.details["external_missed_harmful"]]
    assert missed == ["go away weirdo", "watch your back tonight", "nobody wants you here"]
    alarms = [e["text"] for e in result.details["external_false_alarms"]]
    assert alarms == ["that boss fight was brutal", "kill the process and restart"]
    curves = result.details["roc_curves"]["external"]
    assert set(curves) == {"any", "toxicity", "threat"}
    assert curves["any"]["auc"] == pytest.approx(0.895)
    assert curves["any"]["fpr"][0] == 0 and curves["any"]["tpr"][-1] == 1
    assert result.details["external_data"]["n"] == 20
    json.dumps(result.to_dict(), allow_nan=False)  # the details are JSON-ready


def test_a_threshold_option_overrides_every_category(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _write_external(tmp_path / "external.jsonl", _table_rows())
    result = _run(monkeypatch, TableScorer(), external_data=str(path), threshold=0.3)
    assert result.details["thresholds"] == {"toxicity": 0.3, "threat": 0.3, "insult": 0.3}
    # at 0.3 everywhere only "go away weirdo" (0.2) and "watch your back" (0.2) are missed
    assert result.metric("external_recall").value == pytest.approx(0.8)
    assert result.metric("external_fpr_benign").value == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="threshold"):
        ToxicitySuite(threshold=0.0)


def test_the_external_set_is_skipped_only_when_the_default_file_is_absent(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = _run(monkeypatch, TableScorer(), external_data=None)
    assert not any(m.name.startswith("external_") for m in result.metrics)
    assert result.details["external_data"].startswith("skipped")
    with pytest.raises(DataError, match="does not exist"):
        _run(monkeypatch, TableScorer(), external_data=str(tmp_path / "missing.jsonl"))


def test_a_malformed_external_file_names_its_lines(tmp_path: Path) -> None:
    good = {"text": "hi", "harmful": 0, "labels": {}, "source": "s", "kind": "benign"}
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([
        json.dumps(good),
        json.dumps({**good, "harmful": 2}),
        "{not json",
        "",
        json.dumps({"text": "x", "harmful": 1, "labels": {"toxicity": "yes"}, "source": "s"}),
        json.dumps({**good, "labels": {"toxicity": 1}}),
    ]) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_external_set(path)
    message = str(info.value)
    assert "line 2: 'harmful' must be 0 or 1" in message
    assert "line 3: not JSON" in message
    assert "line 5: missing field(s) ['kind']" in message and "line 5: 'labels'" in message
    assert "line 6: a row with harmful 0 has a category labelled 1" in message
    assert "line 1" not in message and info.value.path == str(path)
    only_benign = _write_external(tmp_path / "benign.jsonl", [good])
    with pytest.raises(DataError, match="needs harmful and benign rows"):
        read_external_set(only_benign)


def test_obfuscated_recall_per_obfuscator(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    # every harmful row's longest word is "idiot": the known obfuscators are undone before
    # scoring, so their recall is 1 by construction; the unseen ones get what the normaliser
    # leaves, and the two metrics are the shares over their variants
    rows = [{"text": t, "harmful": 1, "labels": {"toxicity": 1}, "source": "s", "kind": "insult"}
            for t in ("you idiot", "such an idiot", "idiot!", "get out idiot", "you are idiot")]
    rows.append({"text": "hello there", "harmful": 0, "labels": {}, "source": "s",
                 "kind": "benign"})
    path = _write_external(tmp_path / "external.jsonl", rows)
    result = _run(monkeypatch, KeywordScorer("idiot"), external_data=str(path))
    by_name = result.details["external_recall_by_obfuscation"]
    assert set(by_name) == set(OBFUSCATORS)
    assert {name: by_name[name] for name in KNOWN_OBFUSCATORS} == dict.fromkeys(
        KNOWN_OBFUSCATORS, 1.0)
    share_all = float(np.mean(list(by_name.values())))
    share_unseen = float(np.mean([by_name[name] for name in UNSEEN_OBFUSCATORS]))
    assert result.metric("external_recall").value == 1.0
    assert result.metric("external_recall_obfuscated").value == pytest.approx(share_all)
    assert result.metric("external_recall_obfuscated").n == 5 * len(OBFUSCATORS)
    assert result.metric("external_recall_obfuscated_unseen").value == pytest.approx(share_unseen)
    assert result.metric("external_recall_obfuscated_unseen").n == 5 * len(UNSEEN_OBFUSCATORS)
    assert result.details["external_recall_retained"] == pytest.approx(share_all, abs=1e-4)
    assert result.details["external_recall_retained_unseen"] == pytest.approx(share_unseen,
                                                                              abs=1e-4)
    assert result.details["obfuscators"] == {
        name: "known" if name in KNOWN_OBFUSCATORS else "unseen" for name in OBFUSCATORS}
    assert set(result.details["guard_recall_by_obfuscation"]) == set(OBFUSCATORS)


def test_unseen_obfuscations_count_only_in_the_unseen_metric(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    # a scorer that flags only text the normaliser left obfuscated: every known variant is
    # normalised back to the plain row and passes, so all flags come from unseen obfuscators
    plain = ["you idiot", "such an idiot", "idiot!", "get out idiot", "you are idiot"]
    rows = [{"text": t, "harmful": 1, "labels": {"toxicity": 1}, "source": "s", "kind": "insult"}
            for t in plain]
    rows.append({"text": "hello there", "harmful": 0, "labels": {}, "source": "s",
                 "kind": "benign"})
    path = _write_external(tmp_path / "external.jsonl", rows)
    result = _run(monkeypatch, NotPlainScorer(plain), external_data=str(path))
    by_name = result.details["external_recall_by_obfuscation"]
    assert all(by_name[name] == 0.0 for name in KNOWN_OBFUSCATORS)
    flagged = sum(by_name[name] * 5 for name in UNSEEN_OBFUSCATORS)
    assert flagged > 0  # some unseen variant is left as written
    assert result.metric("external_recall_obfuscated_unseen").value == pytest.approx(
        flagged / (5 * len(UNSEEN_OBFUSCATORS)))
    assert result.metric("external_recall_obfuscated").value == pytest.approx(
        flagged / (5 * len(OBFUSCATORS)))


# -- the bias check -------------------------------------------------------------------------


def test_bias_gap_of_a_scorer_that_flags_one_group(monkeypatch: pytest.MonkeyPatch) -> None:
    templates = IdentityTemplates.load()
    assert not any("muslim" in t.lower() or "tall" in t.lower() for t in templates.templates)
    # flags every sentence naming Muslims, and the sentences filled with the filler "tall"
    result = _run(monkeypatch, KeywordScorer("muslim", "tall"), external_data=None)
    neutral_fpr = 1 / len(templates.neutral)
    gap = result.metric("bias_fpr_gap")
    assert gap.value == pytest.approx(1 - neutral_fpr)
    assert gap.n == len(templates.templates) * (
        sum(len(g) for g in templates.groups.values()) + len(templates.neutral))
    assert gap.ci_low <= gap.value <= gap.ci_high
    by_group = result.details["bias_by_group"]
    muslim = by_group["Muslim"]
    assert muslim["axis"] == "religion" and muslim["fpr"] == 1.0
    assert muslim["n"] == len(templates.templates)
    assert muslim["gap"] == pytest.approx(1 - neutral_fpr, abs=1e-4)
    assert muslim["ci_low"] <= muslim["gap"] <= muslim["ci_high"]
    assert by_group["gay"]["gap"] == pytest.approx(-neutral_fpr, abs=1e-4)
    assert result.details["bias_worst_group"] == "Muslim"
    assert result.details["bias_neutral"]["fpr"] == pytest.approx(neutral_fpr, abs=1e-4)


def test_trigger_word_fpr_counts_the_flagged_benign_sentences(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    rows = [{"text": "Moby Dick is a whale of a book.", "sense": "name", "seen_trigger": True},
            {"text": "Kill the boss to finish the level.", "sense": "game", "seen_trigger": False},
            {"text": "The pussy willow blooms in spring.", "sense": "plant", "seen_trigger": True},
            {"text": "Dick Whittington became Lord Mayor.", "sense": "name", "seen_trigger": False}]
    path = _write_external(tmp_path / "triggers.jsonl", rows)
    result = _run(monkeypatch, KeywordScorer("dick"), external_data=None,
                  identity_templates=None, trigger_words=str(path))
    fpr = result.metric("trigger_word_fpr")
    assert fpr.value == pytest.approx(0.5) and fpr.n == 4 and fpr.ci_low < 0.5 < fpr.ci_high
    details = result.details["trigger_words"]
    assert details["by_sense"]["name"] == {"fpr": 1.0, "flagged": 2, "n": 2}
    assert details["by_sense"]["game"]["flagged"] == 0
    assert details["unseen_triggers"] == {"fpr": 0.5, "flagged": 1, "n": 2}
    (tmp_path / "bad.jsonl").write_text('{"text": 3}\n', encoding="utf-8")
    with pytest.raises(DataError, match="no 'text' string"):
        _run(monkeypatch, KeywordScorer("dick"), external_data=None, identity_templates=None,
             trigger_words=str(tmp_path / "bad.jsonl"))


def test_the_held_out_trigger_word_set_is_disjoint_from_the_training_one() -> None:
    from eval_suites.toxicity import BENIGN_TRIGGER_WORDS

    train_path = Path(__file__).parents[2] / "scripts/data/benign_trigger_words_train.jsonl"
    held_out = [json.loads(line) for line in BENIGN_TRIGGER_WORDS.read_text("utf-8").splitlines()]
    train = [json.loads(line) for line in train_path.read_text("utf-8").splitlines()]
    assert len(held_out) >= 200 and len(train) >= 500

    def words(text: str) -> set[str]:
        return set(re.findall(r"[a-z']+", text.lower()))

    train_words = [words(r["text"]) for r in train]
    for row in held_out:
        mine = words(row["text"])
        closest = max(len(mine & w) / len(mine | w) for w in train_words)
        assert closest < 0.5, row["text"]  # no near-duplicate of a training sentence
        if not row["seen_trigger"]:
            assert not any(row["trigger"].lower() in r["text"].lower() for r in train), row


def test_the_identity_template_file() -> None:
    raw = json.loads(IDENTITY_TEMPLATES.read_text(encoding="utf-8"))
    assert raw["license"] == "Apache-2.0" and "metaverse-guard" in raw["written_for"]
    templates = IdentityTemplates.load()
    assert len(templates.templates) >= 12
    assert set(templates.groups) == {"religion", "ethnicity", "nationality",
                                     "sexual_orientation", "gender_identity", "disability",
                                     "age"}
    assert all(6 <= len(terms) <= 10 for terms in templates.groups.values())
    terms = [t for g in templates.groups.values() for t in g]
    assert len(terms) == len(set(terms))  # a term in two axes would be reported once


def test_newcombe_difference_matches_the_published_example() -> None:
    # Newcombe (1998), table II, example (a): 56/70 - 48/80 -> [0.0524, 0.3339] (method 10)
    diff = newcombe_difference(56, 70, 48, 80)
    assert diff.value == pytest.approx(0.2)
    assert diff.low == pytest.approx(0.0524, abs=1e-4)
    assert diff.high == pytest.approx(0.3339, abs=1e-4)


# -- statistics helpers ---------------------------------------------------------------------


def test_ece_by_hand() -> None:
    # bins: [0.0,0.1): two scores 0.05 with labels 0,0 -> |0 - 0.1| = 0.1
    #       [0.9,1.0]: 0.95, 1.0 with labels 1,0 -> |1 - 1.95| = 0.95
    #       [0.6,0.7): 0.6, 0.6 with labels 1,1 -> |2 - 1.2| = 0.8
    labels = [0, 0, 1, 0, 1, 1]
    scores = [0.05, 0.05, 0.95, 1.0, 0.6, 0.6]
    assert expected_calibration_error(labels, scores) == pytest.approx((0.1 + 0.95 + 0.8) / 6)
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0
    estimate = ece_interval(labels, scores, resamples=200, seed=0)
    assert estimate.low <= estimate.value <= estimate.high and estimate.n == 6
    with pytest.raises(ConfigError):
        expected_calibration_error([0, 1], [0.5, 1.5])


def test_recall_at_fpr_by_hand() -> None:
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.2, 0.75, 0.3, 0.1, 0.1, 0.0]
    # no false alarm allowed (1/5 * 0 ... floor(0.02 * 5) = 0): above 0.75 -> 2 of 4
    assert recall_at_fpr(labels, scores, max_fpr=0.02) == (0.5, 0.8)
    # one of five allowed: above 0.3 -> 3 of 4, lowest flagged score 0.7
    assert recall_at_fpr(labels, scores, max_fpr=0.2) == (0.75, 0.7)
    assert recall_at_fpr(labels, scores, max_fpr=1.0)[0] == 1.0


def test_roc_curve_agrees_with_auc_and_is_downsampled() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 1000)
    scores = rng.random(1000) + 0.3 * labels
    fpr, tpr = roc_curve(labels, scores, max_points=5000)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(labels, scores))
    small_fpr, small_tpr = roc_curve(labels, scores)
    assert len(small_fpr) <= 101 and (small_fpr[0], small_tpr[-1]) == (0.0, 1.0)
    assert np.all(np.diff(small_fpr) >= 0) and np.all(np.diff(small_tpr) >= 0)
    # ties make one point: two distinct scores -> (0,0), (0.5,1), (1,1)
    assert roc_curve([1, 0, 1, 0], [0.9, 0.9, 0.9, 0.1]) == ([0.0, 0.5, 1.0], [0.0, 1.0, 1.0])


# -- obfuscators and the normaliser ---------------------------------------------------------

SENTENCES = [("you are such an idiot", "idiot"), ("shut up you loser", "loser"),
             ("get lost moron", "moron"), ("what stupid people", "stupid")]
#: The 20 toxic sentences the normaliser is measured on (tests/test_guard/).
TOXIC = json.loads((Path(__file__).parents[1] / "test_guard" / "obfuscation_sentences.json")
                   .read_text(encoding="utf-8"))["toxic"]
HARMFUL_BUNDLED = [r.text for r in read_bundled_set() if r.harmful]


def _share_undone(name: str) -> float:
    """Share of the bundled set's harmful texts the normaliser gives back (seed 0)."""
    fn, rng = OBFUSCATORS[name], np.random.default_rng(0)
    return float(np.mean([normalize(fn(text, rng)).text == normalize(text).text
                          for text in HARMFUL_BUNDLED]))


@pytest.mark.parametrize("name", list(OBFUSCATORS))
def test_every_obfuscator_changes_the_text_and_is_seeded(name: str) -> None:
    fn = OBFUSCATORS[name]
    for text in [t for t, _ in SENTENCES] + TOXIC:
        first = fn(text, np.random.default_rng(7))
        assert first != text
        assert fn(text, np.random.default_rng(7)) == first


@pytest.mark.parametrize("name", list(OBFUSCATORS))
def test_the_flags_say_what_the_normaliser_undoes(name: str) -> None:
    share = _share_undone(name)
    if REGISTRY[name].known:
        assert share >= KNOWN_SHARE, f"{name}: only {share:.2f} undone, flag it unseen"
    else:
        assert share < KNOWN_SHARE, f"{name}: {share:.2f} undone now, flag it known"


@pytest.mark.parametrize("name", list(KNOWN_OBFUSCATORS))
def test_the_normaliser_undoes_the_known_obfuscators_on_short_insults(name: str) -> None:
    for seed in range(3):
        for text, _ in SENTENCES:
            obfuscated = KNOWN_OBFUSCATORS[name](text, np.random.default_rng(seed))
            assert normalize(obfuscated).text == normalize(text).text, (name, obfuscated)


def test_the_registry_is_split_by_its_flag() -> None:
    assert set(KNOWN_OBFUSCATORS) | set(UNSEEN_OBFUSCATORS) == set(OBFUSCATORS) == set(REGISTRY)
    assert not set(KNOWN_OBFUSCATORS) & set(UNSEEN_OBFUSCATORS)
    assert UNSEEN_OBFUSCATORS  # the unseen metric needs at least one
    assert {"math_alphanumeric", "circled", "fullwidth", "dotted", "hyphenated", "slashed",
            "split_word", "comma_separated", "middle_dotted", "middle_dot", "asterisk_vowel",
            "spaced_sentence", "doubled", "reversed_words", "hangul_filler", "cherokee",
            "armenian"} <= set(OBFUSCATORS)


def test_the_new_obfuscators_use_the_documented_characters() -> None:
    rng = np.random.default_rng(0)
    assert OBFUSCATORS["circled"]("idiot", rng) == "ⓘⓓⓘⓞⓣ"
    assert OBFUSCATORS["fullwidth"]("Idiot", rng) == "Ｉｄｉｏｔ"
    assert OBFUSCATORS["dotted"]("you idiot", rng) == "you i.d.i.o.t"
    assert OBFUSCATORS["hyphenated"]("you idiot", rng) == "you i-d-i-o-t"
    assert OBFUSCATORS["slashed"]("you idiot", rng) == "you i/d/i/o/t"
    assert OBFUSCATORS["comma_separated"]("you idiot", rng) == "you i,d,i,o,t"
    assert OBFUSCATORS["middle_dotted"]("you idiot", rng) == "you i·d·i·o·t"
    split = OBFUSCATORS["split_word"]("you idiot", rng)
    assert split.replace(" ", "") == "youidiot" and split.count(" ") == 2
    dot = OBFUSCATORS["middle_dot"]("you idiot", rng)
    assert dot.replace("·", "") == "you idiot" and dot.count("·") == 1 and "·" in dot[5:-1]
    assert OBFUSCATORS["asterisk_vowel"]("fuck off", rng) == "f*ck off"
    assert OBFUSCATORS["spaced_sentence"]("you idiot", rng) == "y o u i d i o t"
    assert OBFUSCATORS["doubled"]("you idiot!", rng) == "yyoouu iiddiioott!"
    assert OBFUSCATORS["reversed_words"]("you are an idiot", rng) == "uoy era na toidi"
    plain = "you are an idiot"
    filled = OBFUSCATORS["hangul_filler"](plain, rng)
    assert set(filled) - set(plain) <= {"\u3164", "\uffa0"} and filled != plain
    assert all(0x13A0 <= ord(c) <= 0x13FF for c in OBFUSCATORS["cherokee"]("idiot", rng))
    armenian = OBFUSCATORS["armenian"]("you loser", rng)
    assert armenian[4:] == "լօser" and all(c.isascii() or 0x530 <= ord(c) <= 0x58F
                                           for c in armenian)
    math = OBFUSCATORS["math_alphanumeric"]("idiot", rng)
    assert all(0x1D400 <= ord(c) <= 0x1D7FF for c in math)


# -- the report -----------------------------------------------------------------------------


def test_the_html_report_draws_the_roc_curves() -> None:
    curves = {"any": {"fpr": [0.0, 0.2, 1.0], "tpr": [0.0, 0.8, 1.0], "auc": 0.8},
              "threat": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.6, 1.0], "auc": 0.55}}
    document = parse_results(results_dict([{
        "suite": "toxicity", "metrics": [],
        "details": {"roc_curves": {"bundled": {"any": curves["any"]}, "external": curves},
                    "external_missed_harmful": [{"text": "i will hurt you", "score": 0.1}]}}]))
    page = render(document)
    assert page.count('<svg class="roc"') == 2
    assert "ROC curves of the guard on the external set" in page
    assert "threat (AUC 0.55)" in page and "any (AUC 0.8)" in page
    assert "stroke-dasharray" in page  # the chance diagonal
    assert "Harmful external texts the guard missed" in page and "i will hurt you" in page
    svg = roc_svg(curves, label="x")
    assert svg.count("<polyline") == 2 and roc_svg({}) == ""
