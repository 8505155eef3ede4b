"""The training pipeline: from data to a checkpoint in every mode (clean, adversarial, dp, both).

:func:`fine_tune` loads the data and the backbone, builds the word recogniser, the substitution
defence (SAFER's sets, SEM's clusters or ASCC's candidate table) and the callbacks the mode
needs, runs the trainer (:class:`training.loop.Trainer`, or the DP-SGD
:class:`training.privacy.PrivateTrainer`) and writes the checkpoint with its manifest.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guard.data import BUNDLED, TextDataset, bundled_dir, load_splits
from guard.errors import DataError
from guard.models.responder import RESPONSES_FILE
from guard.models.source import (
    default_backbone_path,
    load_pretrained,
    pick_device,
    resolve_model,
    transformers_errors_only,
)
from guard.models.substitution_smoothing import (
    SMOOTHING_FILE,
    SMOOTHING_TABLE_FILE,
    SubstitutionSmoother,
)
from guard.models.synonym_encoding import SYNONYM_ENCODING_FILE, SynonymEncoder
from guard.models.word_recognition import WORD_RECOGNIZER_FILE, WordRecognizer, public_words
from guard.provenance import environment, package_versions, sha256_model_dir
from training.callbacks import EarlyStoppingCallback, ProgressCallback, TrainerCallback
from training.checkpoint import check_writable_out, write_checkpoint
from training.config import TrainConfig
from training.convex_substitution import ConvexSubstitutionAdversary, TokenSubstitutes
from training.distributed import DistributedContext, context_from_environment, process_group
from training.loop import Trainer, seed_everything
from training.resume import discard_training_state, load_training_state, resume_dir_for


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        checkpoint: The folder written.
        manifest: The manifest saved in it.
    """

    checkpoint: Path
    manifest: dict[str, Any]


def _backbone(config: TrainConfig) -> str:
    return str(default_backbone_path()) if config.model == "default" else config.model


def _bundled_responses(config: TrainConfig) -> str | None:
    """The bundled intent -> answer table, when training on the bundled data."""
    if config.data != BUNDLED:
        return None
    return (bundled_dir() / RESPONSES_FILE).read_text(encoding="utf-8")


def resume_config(out: str | Path) -> TrainConfig:
    """The settings of the interrupted run whose checkpoint folder was to be ``out``.

    Raises:
        ConfigError: If there is no readable training state beside ``out``.
    """
    state = load_training_state(resume_dir_for(Path(out).expanduser().resolve()))
    return TrainConfig.model_validate(state.meta["config"])


def fine_tune(
    config: TrainConfig,
    *,
    out: str | Path,
    progress: bool = True,
    callbacks: tuple[TrainerCallback, ...] = (),
    resume: bool = False,
) -> TrainResult:
    """Fine-tune a sequence classifier and write a checkpoint.

    While training, a resumable state is saved every ``config.checkpoint_every`` epochs into
    ``<out>.resume`` beside the checkpoint folder; it is deleted once the checkpoint is written.

    Started by ``torchrun`` with several processes, it trains data-parallel (see
    :mod:`training.distributed`): ``config.batch_size`` is the global batch, rank 0 shows the
    progress and writes the checkpoint, and every process returns the same result.

    Args:
        config: Model, data and hyper-parameters.
        out: Checkpoint folder to write (atomically; an earlier guard checkpoint is replaced).
        progress: Show a progress bar with loss, accuracy and (private modes) epsilon.
        callbacks: Extra callbacks, run after the built-in ones.
        resume: Continue the interrupted run saved in ``<out>.resume`` (same ``config``); the
            result equals that of an uninterrupted run.

    With ``config.substitution_defence="safer"`` the test metrics are those of the smoothed
    classifier the checkpoint becomes (``"smoothed": 1.0``); the training-time attacks of the
    adversarial modes query the model without the smoother (with the word recogniser and a SEM
    encoder, which cost nothing).

    Returns:
        The checkpoint folder and its manifest.

    Raises:
        MissingExtraError: If a substitution defence is asked for without the attacks extra.
        DataError: If the data is missing or invalid.
        ModelNotFoundError: If the backbone cannot be found or loaded.
        ConfigError: If ``out`` cannot be written, or there is no state to resume.
    """
    context = context_from_environment()
    with process_group(context, pick_device(config.device)) as device:
        return _fine_tune(config, out=out, progress=progress, callbacks=callbacks, resume=resume,
                          device=device, context=context)


def _fine_tune(
    config: TrainConfig,
    *,
    out: str | Path,
    progress: bool,
    callbacks: tuple[TrainerCallback, ...],
    resume: bool,
    device: str,
    context: DistributedContext,
) -> TrainResult:
    from transformers import AutoModelForSequenceClassification

    from guard.models.pooled import MeanPooledBackbone

    out_path = Path(out).expanduser().resolve()
    check_writable_out(out_path)  # fail before minutes of training, not after
    state_dir = resume_dir_for(out_path)
    saved = load_training_state(state_dir) if resume else None
    splits = load_splits(config.data, text_column=config.text_column,
                         label_column=config.label_column)
    if splits.validation is None or len(splits.validation) == 0:
        raise DataError(f"{config.data}: too few rows to hold out a validation split")
    source = resolve_model(_backbone(config), revision=config.revision)
    labels = list(splits.label_names)
    seed_everything(config.seed)  # the new classification head is initialised randomly
    with transformers_errors_only():  # it warns that the new head is untrained: we know
        tokenizer, model = load_pretrained(
            MeanPooledBackbone if config.pooling == "mean" else AutoModelForSequenceClassification,
            source, what="a backbone",
            trust_remote_code=config.trust_remote_code,
            num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            ignore_mismatched_sizes=True)  # a fresh head for our labels
    model.to(device)
    adversarial = None
    if config.adversarial:
        from training.adversarial import AdversarialAugmentationCallback

        adversarial = AdversarialAugmentationCallback(config)
    smoother = _build_smoother(config) if config.substitution_defence == "safer" else None
    encoder = _build_encoder(config) if config.substitution_defence == "sem" else None
    convex = (_build_convex_adversary(config, tokenizer, device)
              if config.substitution_defence == "ascc" else None)
    recognizer = None
    if config.word_recognition != "off":
        recognizer = WordRecognizer.build(config.word_recognition, public_words(tokenizer),
                                          splits.train.texts)
    trainer_class: type[Trainer] = Trainer
    if config.private:
        from training.privacy import PrivateTrainer

        trainer_class = PrivateTrainer
    trainer = trainer_class(
        model, tokenizer, train=splits.train, validation=splits.validation, config=config,
        callbacks=(*((adversarial,) if adversarial else ()),
                   ProgressCallback(enabled=progress and context.is_main),
                   EarlyStoppingCallback(patience=config.patience, min_delta=config.min_delta),
                   *callbacks),
        state_dir=state_dir, resume_from=saved, distributed=context,
        word_recognizer=recognizer, smoother=smoother, synonym_encoder=encoder,
        convex_adversary=convex,
    )
    started = time.perf_counter()
    state = trainer.train()
    seconds = time.perf_counter() - started
    test_metrics: dict[str, float] = {}
    if splits.test is not None and smoother is not None:
        test_metrics = _smoothed_metrics(model, tokenizer, config, recognizer, smoother,
                                         splits.test)
    elif splits.test is not None:
        test_loss, test_accuracy = trainer.evaluate(splits.test)
        test_metrics = {"loss": test_loss, "accuracy": test_accuracy, "n": float(len(splits.test))}
    manifest = {
        "kind": "guard-checkpoint",
        "mode": config.mode,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": {
            "spec": config.model,
            "location": source.location,
            "sha256": sha256_model_dir(source.location) if source.kind == "local" else None,
        },
        "data": {
            "source": config.data,
            "sha256": splits.sha256,
            "labels": labels,
            "n_train": len(splits.train),
            "n_validation": len(splits.validation),
            "n_test": len(splits.test) if splits.test is not None else 0,
        },
        "config": config.model_dump(),
        "seed": config.seed,
        "device": device,
        "processes": context.world_size,
        "packages": package_versions(),
        "environment": environment(),
        "metrics": {
            "validation": {"accuracy": state.best_metric, "best_epoch": state.best_epoch},
            "test": test_metrics,
            "epochs_run": state.epoch,
            "stopped_early": state.epoch < config.epochs,
            "train_seconds": round(seconds, 2),
            "resumed_at_epoch": int(saved.meta["epoch"]) if saved is not None else None,
        },
        "history": state.log_history,
    }
    if recognizer is not None:
        manifest["word_recognition"] = {
            "source": recognizer.source, "training_words": len(recognizer.training_counts),
            "public_words": len(recognizer.public), "file": WORD_RECOGNIZER_FILE}
    if smoother is not None:
        manifest["substitution_defence"] = {
            "method": "safer", "samples": smoother.samples, **smoother.provenance,
            "files": [SMOOTHING_FILE, SMOOTHING_TABLE_FILE]}
    if encoder is not None:
        manifest["substitution_defence"] = {"method": "sem", **encoder.provenance,
                                            "files": [SYNONYM_ENCODING_FILE]}
    if convex is not None:
        manifest["substitution_defence"] = {
            "method": "ascc", "steps": convex.steps, "step_size": convex.step_size,
            "beta": convex.beta, "set_size": config.substitution_set_size,
            "min_cos_sim": config.substitution_min_cos_sim,
            "substitutable_tokens": convex.substitutes.substitutable,
            **convex.substitutes.provenance, "files": []}
    privacy = getattr(trainer, "privacy", None)
    if privacy:
        manifest["privacy"] = privacy
    if adversarial is not None:
        manifest["adversarial"] = {
            "recipe": config.adv_recipe, "fraction": config.adv_fraction,
            "clean_epochs": config.adv_clean_epochs, "every": config.adv_every,
            "query_budget": config.adv_query_budget, "keep": config.adv_keep,
            "rounds": adversarial.rounds,
            "constraint_set": adversarial.rounds[0]["constraint_set"]
            if adversarial.rounds else None,
        }
    if context.is_main:
        responses = _bundled_responses(config)
        extra = {RESPONSES_FILE: responses} if responses is not None else {}
        if recognizer is not None:
            extra[WORD_RECOGNIZER_FILE] = recognizer.to_json()
        if encoder is not None:
            extra[SYNONYM_ENCODING_FILE] = encoder.to_json()
        write_checkpoint(out_path, model=model, tokenizer=tokenizer, manifest=manifest,
                         extra_files=extra,
                         extra_writers=(smoother.save,) if smoother else ())
        discard_training_state(state_dir)  # the run is complete: nothing to resume
    context.barrier()  # the other processes return once the checkpoint exists
    return TrainResult(out_path, json.loads((out_path / "manifest.json").read_text()))


def _neighbour_source() -> tuple[Any, frozenset[str], dict[str, str]]:
    """The counter-fitted vectors, the words never substituted and their provenance."""
    from attacks.recipes import counterfitted_vectors, textfooler_stopwords

    vectors = counterfitted_vectors()
    return vectors, textfooler_stopwords(), {"vectors": vectors.manifest["key"],
                                             "vectors_source": vectors.manifest["method"],
                                             "protected": "TextFooler's stopwords"}


def _build_smoother(config: TrainConfig) -> SubstitutionSmoother:
    """SAFER's perturbation sets from the counter-fitted GloVe vectors (attacks extra)."""
    vectors, protected, provenance = _neighbour_source()
    return SubstitutionSmoother.from_neighbours(
        vectors.words, vectors.nn, vectors.matrix, size=config.substitution_set_size,
        min_cos_sim=config.substitution_min_cos_sim, protected=protected,
        samples=config.safer_samples, seed=config.seed, provenance=provenance)


def _build_encoder(config: TrainConfig) -> SynonymEncoder:
    """SEM's synonym clusters from the counter-fitted GloVe vectors (attacks extra)."""
    vectors, protected, provenance = _neighbour_source()
    return SynonymEncoder.from_neighbours(
        vectors.words, vectors.nn, vectors.matrix, size=config.substitution_set_size,
        min_cos_sim=config.substitution_min_cos_sim, protected=protected,
        provenance=provenance)


def _build_convex_adversary(config: TrainConfig, tokenizer: Any,
                            device: str) -> ConvexSubstitutionAdversary:
    """ASCC's candidate table from the counter-fitted GloVe vectors (attacks extra)."""
    vectors, protected, provenance = _neighbour_source()
    substitutes = TokenSubstitutes.from_neighbours(
        vectors.words, vectors.nn, vectors.matrix, tokenizer,
        size=config.substitution_set_size, min_cos_sim=config.substitution_min_cos_sim,
        protected=protected, provenance=provenance).to(device)
    return ConvexSubstitutionAdversary(substitutes, steps=config.ascc_steps,
                                       step_size=config.ascc_step_size, beta=config.ascc_beta)


def _smoothed_metrics(model: Any, tokenizer: Any, config: TrainConfig,
                      recognizer: WordRecognizer | None, smoother: SubstitutionSmoother,
                      test: TextDataset) -> dict[str, float]:
    """Test accuracy and loss of the smoothed classifier, as the checkpoint will answer."""
    import numpy as np

    from guard.models.classifier import HFClassifier

    classifier = HFClassifier(model, tokenizer, max_length=config.max_length,
                              word_recognizer=recognizer, smoother=smoother)
    probs = classifier.predict_proba(list(test.texts))
    column = [classifier.labels.index(label) for label in test.labels]
    chosen = probs[np.arange(len(column)), column]
    return {"loss": float(-np.log(np.maximum(chosen, 1e-30)).mean()),
            "accuracy": float((probs.argmax(axis=1) == np.array(column)).mean()),
            "n": float(len(test)), "smoothed": 1.0}
