from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from guard.errors import ConfigError, ModelNotFoundError
from guard.models import HFClassifier
from training.callbacks import EarlyStoppingCallback, TrainerCallback, TrainerControl, TrainerState
from training.config import TrainConfig
from training.pipeline import fine_tune


def test_checkpoint_has_safetensors_tokenizer_and_manifest(tiny_classifier_dir: Path) -> None:
    files = {p.name for p in tiny_classifier_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "manifest.json",
            "responses.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    manifest = json.loads((tiny_classifier_dir / "manifest.json").read_text())
    assert manifest["mode"] == "clean" and manifest["seed"] == 0
    assert len(manifest["data"]["sha256"]) == 64 and manifest["data"]["n_train"] > 800
    assert manifest["config"]["epochs"] == 8 and manifest["config"]["max_length"] == 32
    assert manifest["packages"]["transformers"].startswith("4.")
    assert 0 <= manifest["metrics"]["validation"]["accuracy"] <= 1
    assert len(manifest["history"]) == manifest["metrics"]["epochs_run"]
    assert manifest["files"]["model.safetensors"]
    # Training reduced the loss: the tiny model learned something real.
    history = manifest["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert manifest["metrics"]["test"]["accuracy"] > 2 / 14  # well above chance (1/14)
    labels = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu").labels
    assert list(labels) == manifest["data"]["labels"]


def test_same_seed_gives_identical_weights(tmp_path: Path, tiny_bert_dir: Path) -> None:
    config = TrainConfig(model=str(tiny_bert_dir), epochs=1, batch_size=64, max_length=24)
    a = fine_tune(config, out=tmp_path / "a", progress=False).checkpoint
    b = fine_tune(config, out=tmp_path / "b", progress=False).checkpoint
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert all((wa[k] == wb[k]).all() for k in wa)
    c = fine_tune(config.model_copy(update={"seed": 1}), out=tmp_path / "c",
                  progress=False).checkpoint
    wc = load_file(c / "model.safetensors")
    assert any((wa[k] != wc[k]).any() for k in wa)


def test_early_stopping_stops_after_patience() -> None:
    stopper = EarlyStoppingCallback(patience=2)
    state, control = TrainerState(), TrainerControl()
    for accuracy in (0.5, 0.6, 0.6, 0.59):
        stopper.on_evaluate(state, control, metrics={"val_accuracy": accuracy})
    assert control.should_stop and stopper.stale_epochs == 2


class _Boom(TrainerCallback):
    def on_epoch_end(self, state: TrainerState, control: TrainerControl) -> None:
        raise RuntimeError("power cut")


def test_failed_training_leaves_previous_checkpoint_intact(tmp_path: Path,
                                                          tiny_bert_dir: Path) -> None:
    config = TrainConfig(model=str(tiny_bert_dir), epochs=1, batch_size=64, max_length=24)
    out = fine_tune(config, out=tmp_path / "ck", progress=False).checkpoint
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(RuntimeError, match="power cut"):
        fine_tune(config.model_copy(update={"seed": 5}), out=out, progress=False,
                  callbacks=(_Boom(),))
    assert (out / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no stray temp folders


def test_refuses_to_overwrite_a_foreign_folder(tmp_path: Path, tiny_bert_dir: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    config = TrainConfig(model=str(tiny_bert_dir), epochs=1)
    with pytest.raises(ConfigError, match="not a guard checkpoint"):
        fine_tune(config, out=tmp_path, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_missing_backbone(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no model folder"):
        fine_tune(TrainConfig(model="/nonexistent/backbone"), out=tmp_path / "x", progress=False)


def test_config_precedence_and_unknown_keys(tmp_path: Path) -> None:
    toml = tmp_path / "train.toml"
    toml.write_text("epochs = 4\nbatch_size = 8\n")
    config = TrainConfig.from_sources(toml, batch_size=32, seed=None)
    assert (config.epochs, config.batch_size, config.seed) == (4, 32, 0)
    toml.write_text("epoch = 4\n")
    with pytest.raises(ConfigError, match="epoch: Extra inputs are not permitted"):
        TrainConfig.from_sources(toml)
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig.from_sources(None, learning_rate=-1.0)


def test_adversarial_mode_trains_on_successful_attacks(tmp_path: Path,
                                                        tiny_classifier_dir: Path) -> None:
    config = TrainConfig(model=str(tiny_classifier_dir), mode="adversarial", epochs=2,
                         patience=5, batch_size=64, max_length=32, adv_clean_epochs=0,
                         adv_every=1, adv_fraction=0.1, adv_query_budget=100)
    manifest = fine_tune(config, out=tmp_path / "adv", progress=False).manifest
    rounds = manifest["adversarial"]["rounds"]
    assert [r["epoch"] for r in rounds] == [1, 2] and all(r["attacked"] == 84 for r in rounds)
    assert sum(r["successful"] for r in rounds) > 0
    assert manifest["adversarial"]["constraint_set"].startswith("deepwordbug:")
    n_train = manifest["data"]["n_train"]
    pool = 0
    for epoch, round_ in zip(manifest["history"], rounds, strict=True):
        pool += round_["successful"]  # adv_keep: earlier rounds' examples stay in
        assert round_["trained_on"] == pool
        assert epoch["examples"] == n_train + pool  # really trained on them


def test_adversarial_mode_without_keep_trains_on_the_current_round_only(
        tmp_path: Path, tiny_classifier_dir: Path) -> None:
    config = TrainConfig(model=str(tiny_classifier_dir), mode="adversarial", epochs=2,
                         patience=5, batch_size=64, max_length=32, adv_clean_epochs=0,
                         adv_fraction=0.05, adv_query_budget=100, adv_keep=False)
    manifest = fine_tune(config, out=tmp_path / "adv", progress=False).manifest
    n_train = manifest["data"]["n_train"]
    for epoch, round_ in zip(manifest["history"], manifest["adversarial"]["rounds"],
                             strict=True):
        assert round_["trained_on"] == round_["successful"]
        assert epoch["examples"] == n_train + round_["successful"]


def test_adversarial_mode_rejects_unknown_recipe(tmp_path: Path, tiny_bert_dir: Path) -> None:
    from guard.errors import UnknownNameError

    config = TrainConfig(model=str(tiny_bert_dir), mode="adversarial", adv_recipe="deepwordbog")
    with pytest.raises(UnknownNameError, match="Did you mean 'deepwordbug'"):
        fine_tune(config, out=tmp_path / "x", progress=False)


@pytest.mark.parametrize("head_init", ["random", "centroids", "centroid-span"])
def test_dp_epsilon_matches_opacus_accountant(tmp_path: Path, tiny_bert_dir: Path,
                                              head_init: str) -> None:
    from opacus.accountants import RDPAccountant

    config = TrainConfig(model=str(tiny_bert_dir), mode="dp", epochs=2, patience=5,
                         batch_size=2, max_length=24, learning_rate=1e-2, dp_epsilon=None,
                         dp_noise_multiplier=1.0, dp_accountant="rdp", dp_delta=1e-5,
                         dp_head_init=head_init, dp_centroid_noise=1.5)
    privacy = fine_tune(config, out=tmp_path / "dp", progress=False).manifest["privacy"]
    # every Poisson round is accounted, empty batches included (q = 2/840 draws many)
    assert privacy["steps"] == 2 * round(1 / privacy["sample_rate"])
    reference = RDPAccountant()
    # the centroid release is one full-data Gaussian mechanism, composed before DP-SGD's steps
    release = [] if head_init == "random" else [(1.5, 1.0, 1)]
    reference.history = [*release, (1.0, privacy["sample_rate"], privacy["steps"])]
    assert privacy["epsilon"] == pytest.approx(reference.get_epsilon(delta=1e-5), rel=1e-9)
    assert privacy["head_init"]["method"] == head_init
    assert len(privacy["epsilon_per_epoch"]) == 2
    assert privacy["epsilon_per_epoch"][0] < privacy["epsilon_per_epoch"][1]


def test_dp_target_epsilon_is_spent_and_noise_is_applied(tmp_path: Path,
                                                         tiny_bert_dir: Path) -> None:
    base = TrainConfig(model=str(tiny_bert_dir), mode="dp", epochs=2, patience=5,
                       batch_size=64, max_length=24, learning_rate=1e-2)
    spent = fine_tune(base, out=tmp_path / "eps", progress=False).manifest["privacy"]
    assert spent["epsilon"] == pytest.approx(8.0, abs=0.05) and spent["noise_multiplier"] > 0
    quiet = base.model_copy(update={"dp_epsilon": None, "dp_noise_multiplier": 0.0})
    noisy = base.model_copy(update={"dp_epsilon": None, "dp_noise_multiplier": 2.0})
    a = fine_tune(quiet, out=tmp_path / "q", progress=False).checkpoint
    b = fine_tune(noisy, out=tmp_path / "n", progress=False).checkpoint
    c = fine_tune(noisy, out=tmp_path / "n2", progress=False).checkpoint
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    head = "classifier.weight"
    assert not (wa[head] == wb[head]).all()  # the noise reached the weights
    assert (wb[head] == wc[head]).all()  # and it is seeded
    frozen = "bert.embeddings.word_embeddings.weight"
    assert (wa[frozen] == wb[frozen]).all()  # dp_trainable="head" left the encoder alone


@pytest.mark.parametrize("head_init", ["centroids", "centroid-span"])
def test_dp_head_starts_at_the_class_centroids(tmp_path: Path, tiny_bert_dir: Path,
                                               head_init: str) -> None:
    from guard.data import load_splits
    from training.private_head import CENTROID_LOGIT_SCALE

    # a vanishing step size and no DP-SGD noise: the trained head is the initial one (the span
    # head saved folded into an ordinary linear layer)
    config = TrainConfig(model=str(tiny_bert_dir), mode="dp", epochs=1, max_length=24,
                         learning_rate=1e-12, dp_epsilon=None, dp_noise_multiplier=0.0,
                         dp_centroid_noise=1e-6, dp_head_init=head_init)
    folder = fine_tune(config, out=tmp_path / "dp", progress=False).checkpoint
    clf = HFClassifier.from_pretrained(folder, max_length=24)
    train = load_splits("bundled").train
    sums = torch.zeros(clf.model.config.num_labels, clf.model.config.hidden_size)
    with torch.inference_mode():
        batch = clf.tokenizer(list(train.texts), padding=True, truncation=True, max_length=24,
                              return_tensors="pt")
        embeddings = clf.model.sentence_embedding(**batch)
    targets = torch.tensor([clf.model.config.label2id[label] for label in train.labels])
    sums.index_add_(0, targets, embeddings)
    expected = CENTROID_LOGIT_SCALE * torch.nn.functional.normalize(sums, dim=-1)
    weights = load_file(folder / "model.safetensors")
    assert {k for k in weights if k.startswith("classifier.")} == {"classifier.weight",
                                                                   "classifier.bias"}
    assert torch.allclose(weights["classifier.weight"], expected, atol=1e-4)


def test_centroid_span_head_trains_only_the_mixing_and_folds_exactly(
        tmp_path: Path, tiny_bert_dir: Path) -> None:
    from training.private_head import CentroidSpanHead

    basis = torch.nn.functional.normalize(torch.randn(3, 8, generator=torch.Generator()
                                                      .manual_seed(0)), dim=-1)
    head = CentroidSpanHead(basis, scale=10.0)
    assert [name for name, _ in head.named_parameters()] == ["mix.weight", "mix.bias"]
    assert head.mix.weight.shape == (3, 3)
    with torch.no_grad():
        head.mix.weight.add_(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))
        head.mix.bias.fill_(0.5)
    features = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(head.folded()(features), head(features), atol=1e-5)

    # trained with DP-SGD, the saved head stays in the span of the released centroids: its
    # rows are combinations of those of the head the run started from
    start = TrainConfig(model=str(tiny_bert_dir), mode="dp", epochs=1, max_length=24,
                        learning_rate=1e-12, dp_epsilon=None, dp_noise_multiplier=0.0)
    trained = start.model_copy(update={"learning_rate": 3e-2, "dp_noise_multiplier": 1.0,
                                       "epochs": 2})
    w0, w1 = (load_file(fine_tune(c, out=tmp_path / name, progress=False).checkpoint
                        / "model.safetensors")["classifier.weight"]
              for c, name in ((start, "start"), (trained, "trained")))
    assert not torch.allclose(w0, w1, atol=1e-3)  # it did train
    mixing = torch.linalg.lstsq(w0.T, w1.T).solution  # w1 = mixing.T @ w0, if in the span
    assert torch.allclose(mixing.T @ w0, w1, atol=1e-4)


def test_dp_bad_configs_are_rejected(tmp_path: Path, tiny_bert_dir: Path) -> None:
    with pytest.raises(ConfigError, match="needs pooling='mean'"):
        TrainConfig.from_sources(None, mode="dp", pooling="cls", dp_head_init="centroids")
    assert TrainConfig(mode="dp", pooling="cls").dp_head_init == "random"
    assert TrainConfig(mode="dp").dp_head_init == "centroid-span"
    with pytest.raises(ConfigError, match="without privacy"):
        TrainConfig.from_sources(None, mode="dp", dp_centroid_noise=0.0)
    with pytest.raises(ConfigError, match=r"dp_epsilon.*greater than 0"):
        TrainConfig.from_sources(None, mode="dp", dp_epsilon=0.0)
    with pytest.raises(ConfigError, match="exactly one of dp_epsilon"):
        TrainConfig.from_sources(None, mode="dp", dp_noise_multiplier=1.0)
    with pytest.raises(ConfigError, match="mode"):
        TrainConfig.from_sources(None, mode="private")
    config = TrainConfig(model=str(tiny_bert_dir), mode="dp", dp_delta=0.01)
    with pytest.raises(ConfigError, match=r"below 1/N"):
        fine_tune(config, out=tmp_path / "x", progress=False)
    small = TrainConfig(model=str(tiny_bert_dir), mode="dp", dp_epsilon=1.0, max_length=24,
                        dp_centroid_noise=1.0)
    with pytest.raises(ConfigError, match=r"centroid release \(dp_centroid_noise\) alone spends"):
        fine_tune(small, out=tmp_path / "y", progress=False)


def test_safer_trains_on_perturbed_copies_and_ships_its_smoother(
        tmp_path: Path, tiny_classifier_dir: Path) -> None:
    """The real counter-fitted sets: trained on, saved, hashed, loaded and voted with."""
    from guard.data import load_splits
    from guard.models.substitution_smoothing import (
        SMOOTHING_FILE,
        SMOOTHING_TABLE_FILE,
        SubstitutionSmoother,
    )
    from training.loop import Trainer

    config = TrainConfig(model=str(tiny_classifier_dir), epochs=1, batch_size=64,
                         max_length=32, substitution_defence="safer", safer_samples=4)
    result = fine_tune(config, out=tmp_path / "safer", progress=False)
    manifest = result.manifest
    defence = manifest["substitution_defence"]
    assert defence["method"] == "safer" and defence["samples"] == 4
    assert defence["perturbable_words"] > 10_000 and defence["size"] == 8
    assert {SMOOTHING_FILE, SMOOTHING_TABLE_FILE} <= set(manifest["files"])
    assert manifest["metrics"]["test"]["smoothed"] == 1.0
    smoother = SubstitutionSmoother.load(result.checkpoint)
    assert smoother is not None and smoother.samples == 4
    assert "film" in smoother.perturbation_set("movie")
    assert smoother.perturbation_set("not") == ("not",)  # TextFooler's stopwords stay
    loaded = HFClassifier.from_pretrained(result.checkpoint, device="cpu")
    assert loaded.smoother == smoother

    # Training reads one perturbed copy per row, drawn anew each epoch; evaluation the text.
    splits = load_splits("bundled")
    trainer = Trainer(loaded.model, loaded.tokenizer, train=splits.train,
                      validation=splits.validation, config=config, smoother=smoother)
    text = "Book two museum tickets for the big concert tonight please"
    plain = trainer._encode([text])["input_ids"].tolist()
    noisy = trainer._encode([text], training=True)["input_ids"].tolist()
    expected = smoother.perturb(text, salt=f"train:{config.seed}:0")
    assert expected != text
    assert noisy == trainer._encode([expected])["input_ids"].tolist() != plain
    trainer.state.epoch = 1
    assert trainer._encode([text], training=True)["input_ids"].tolist() != noisy


def test_ascc_trains_against_synonym_combinations_and_ships_nothing_extra(
        tmp_path: Path, tiny_classifier_dir: Path) -> None:
    """The real counter-fitted sets become the candidate table; the loss changes the weights."""
    options = {"model": str(tiny_classifier_dir), "epochs": 1, "batch_size": 64,
               "max_length": 32, "checkpoint_every": 0}
    config = TrainConfig(substitution_defence="ascc", ascc_steps=1, **options)
    result = fine_tune(config, out=tmp_path / "ascc", progress=False)
    defence = result.manifest["substitution_defence"]
    assert defence["method"] == "ascc" and defence["files"] == []
    assert (defence["set_size"], defence["min_cos_sim"], defence["steps"]) == (50, 0.5, 1)
    assert defence["substitutable_tokens"] > 10_000
    assert defence["protected"] == "TextFooler's stopwords"
    loaded = HFClassifier.from_pretrained(result.checkpoint, device="cpu")
    assert loaded.smoother is None and loaded.synonym_encoder is None  # training only
    plain = fine_tune(TrainConfig(**options), out=tmp_path / "plain", progress=False)
    ascc_weights = load_file(result.checkpoint / "model.safetensors")
    plain_weights = load_file(plain.checkpoint / "model.safetensors")
    assert not torch.equal(ascc_weights["classifier.weight"], plain_weights["classifier.weight"])
