"""The training configuration: validated, unknown keys rejected, embedded in every manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guard.config import build_model, read_toml

#: Training modes; the last two are differentially private.
MODES = ("clean", "adversarial", "dp", "adversarial+dp")
PRIVATE_MODES = ("dp", "adversarial+dp")
ADVERSARIAL_MODES = ("adversarial", "adversarial+dp")

# Defaults that depend on the mode, applied where the user gave no value. DP-SGD on a small
# data set learns best with few trainable parameters over a good pooled representation, a fast
# learning rate and large batches (docs/hardening.md has the measurements).
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "clean": {"epochs": 8, "batch_size": 16, "learning_rate": 1e-4, "patience": 2,
              "pooling": "cls"},
    "private": {"epochs": 20, "batch_size": 128, "learning_rate": 3e-2, "patience": 20,
                "pooling": "mean"},
}

# The adversarial modes read through a word recogniser by default; the private one can only use
# the public (data-independent) dictionary, which epsilon need not cover.
WORD_RECOGNITION_DEFAULTS = {"adversarial": "train", "adversarial+dp": "public"}

# Substitution sets by defence, where the user gave none: SAFER and SEM must keep the clean
# meaning of every copy or cluster, so they take a few close neighbours; ASCC trains against
# the sets a substitution attack draws from (TextFooler's 50 neighbours at cosine >= 0.5).
SUBSTITUTION_SET_DEFAULTS: dict[str, tuple[int, float]] = {
    "safer": (8, 0.7), "sem": (8, 0.7), "ascc": (50, 0.5)}


class TrainConfig(BaseModel):
    """How to fine-tune an intent classifier.

    Precedence when the CLI builds one: these defaults < a ``--config`` TOML file < flags.
    The defaults reach 93.3% test accuracy with all-MiniLM-L6-v2 on the bundled intents (seed 0)
    in about three minutes on two CPU cores. ``epochs``, ``batch_size``, ``learning_rate``,
    ``patience`` and ``pooling`` default by mode: 8 / 16 / 1e-4 / 2 / cls for clean and
    adversarial training, 20 / 128 / 3e-2 / 20 / mean for the private modes, which also start the
    head from privately released class centroids and train only their mixing
    (``dp_head_init``) when pooling is mean. The adversarial modes also put a word recogniser
    in front of the model (``word_recognition``): built from the tokenizer's and the training
    texts' words in adversarial mode, from the tokenizer's alone in adversarial+dp.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field("default", description="backbone: 'default' (all-MiniLM-L6-v2, shipped), "
                                               "a folder or a hub id")
    data: str = Field("bundled", description="'bundled', a folder with train/validation/test "
                                             "files, or one CSV/JSONL/parquet file (split "
                                             "80/10/10 deterministically)")
    text_column: str = Field("text", description="text column of user data")
    label_column: str = Field("label", description="label column of user data")
    mode: Literal["clean", "adversarial", "dp", "adversarial+dp"] = Field(
        "clean", description="clean; adversarial: attack part of the training data each epoch "
                             "and train on the successes too (A2T-style; attacks extra); dp: "
                             "differentially private DP-SGD with Opacus (dp extra); "
                             "adversarial+dp: both, each adversarial example counted with the "
                             "record it came from. The private modes default to 20 epochs, "
                             "batch 128, learning rate 3e-2 and mean pooling")
    epochs: int = Field(8, ge=1, le=1000, description="most epochs; early stopping may end sooner")
    patience: int = Field(2, ge=1, description="epochs without validation improvement before stop")
    min_delta: float = Field(0.0, ge=0.0, description="smallest validation gain that counts")
    batch_size: int = Field(16, ge=1, le=4096, description="batch size (the global batch of "
                                                          "all processes under torchrun)")
    learning_rate: float = Field(1e-4, gt=0.0, lt=1.0, description="peak learning rate")
    pooling: Literal["cls", "mean"] = Field(
        "cls", description="sentence representation the head reads: the [CLS] token "
                           "(transformers' standard head) or the L2-normalised mean of the "
                           "token embeddings (BERT backbones)")
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay")
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="share of the steps the "
                                                                 "learning rate warms up over "
                                                                 "(not in the dp modes)")
    max_length: int = Field(64, ge=8, le=4096, description="truncate texts to N tokens")
    adv_recipe: str = Field("deepwordbug", description="attack recipe for adversarial mode")
    adv_fraction: float = Field(0.2, gt=0.0, le=1.0,
                                description="share of training examples attacked per round")
    adv_clean_epochs: int = Field(1, ge=0, description="clean epochs before the first attack")
    adv_every: int = Field(1, ge=1, description="epochs between attack rounds")
    adv_query_budget: int | None = Field(200, ge=1,
                                         description="most model queries per attacked example")
    adv_keep: bool = Field(True, description="keep the adversarial examples of earlier rounds "
                                              "and train on all of them (a growing pool)")
    word_recognition: Literal["off", "public", "train"] = Field(
        "off", description="correct misspelled words before the model reads them (a dictionary "
                           "word recogniser, saved with the checkpoint and applied to every "
                           "input): 'public' looks words up in the tokenizer's whole-word "
                           "vocabulary; 'train' also in the training texts' words (which the "
                           "checkpoint then lists). Defaults: 'train' for adversarial, "
                           "'public' for adversarial+dp, 'off' otherwise; private modes "
                           "allow 'off' or 'public'")
    substitution_defence: Literal["off", "safer", "sem", "ascc"] = Field(
        "off", description="defence against word-substitution attacks, built from "
                           "counter-fitted GloVe neighbours and saved with the checkpoint "
                           "(attacks extra to train): 'safer' trains on copies with words "
                           "swapped at random within their neighbour sets, and the checkpoint "
                           "reads every input as safer_samples such copies and answers with "
                           "their mean probability (SAFER, Ye et al. 2020; safer_samples "
                           "forward passes per input); 'sem' maps every word to the "
                           "representative of its synonym cluster, in training and at "
                           "inference (Wang et al. 2021; no extra forward passes); 'ascc' "
                           "trains against the worst convex combination of each word's and "
                           "its neighbours' embeddings (Dong et al. 2021; training only, "
                           "ascc_steps + 1 extra passes per batch, nothing changes at "
                           "inference; not with the private modes)")
    substitution_set_size: int = Field(8, ge=1, le=50,
                                       description="most neighbours in a word's set or "
                                                   "cluster; default 8 for safer / sem, 50 "
                                                   "for ascc")
    substitution_min_cos_sim: float = Field(0.7, ge=-1.0, le=1.0,
                                            description="least counter-fitted cosine of a "
                                                        "neighbour in a set or cluster; "
                                                        "default 0.7 for safer / sem, 0.5 for "
                                                        "ascc")
    ascc_steps: int = Field(3, ge=1, le=50, description="ascc: gradient-ascent steps of the "
                                                        "search for the worst combination")
    ascc_step_size: float = Field(2.0, gt=0.0, description="ascc: largest change of a "
                                                           "position's weight logits per step")
    ascc_beta: float = Field(1.0, ge=0.0, description="ascc: weight of the divergence under "
                                                      "the worst combination beside the clean "
                                                      "loss (TRADES-style)")
    safer_samples: int = Field(8, ge=1, le=256, description="safer: perturbed copies read per "
                                                             "input at inference")
    dp_epsilon: float | None = Field(8.0, gt=0.0, description="dp: privacy budget to spend")
    dp_delta: float = Field(1e-5, gt=0.0, lt=1.0,
                            description="dp: delta, below 1 / the number of training examples")
    dp_noise_multiplier: float | None = Field(
        None, ge=0.0, description="dp: a fixed noise multiplier instead of a budget (dp_epsilon "
                                  "is then None); epsilon is then reported, not targeted")
    dp_max_grad_norm: float = Field(1.0, gt=0.0, description="dp: per-sample gradient clip norm")
    dp_accountant: Literal["prv", "rdp"] = Field("prv", description="dp: privacy accountant")
    dp_trainable: Literal["head", "last-layer", "all"] = Field(
        "head", description="what DP-SGD trains: the classifier head (and pooler), also the "
                            "last encoder layer, or everything but position embeddings")
    dp_head_init: Literal["random", "centroids", "centroid-span"] = Field(
        "random", description="how DP training starts the head: randomly; from the class "
                              "centroids of the training texts' embeddings released with "
                              "Gaussian noise (mean pooling; counted in epsilon); or "
                              "'centroid-span': from those centroids, and DP-SGD then trains "
                              "only a K x K mixing of them instead of the hidden x K weights. "
                              "Private modes with mean pooling default to centroid-span")
    dp_centroid_noise: float | None = Field(
        None, ge=0.0, description="noise multiplier of the centroid release (sensitivity 1: "
                                  "each text adds one unit-norm embedding). None: calibrated "
                                  "so that the release alone would spend 5/6 of dp_epsilon "
                                  "(0.7 at epsilon 8, delta 1e-5), or 0.7 with a fixed "
                                  "dp_noise_multiplier")
    dp_secure_mode: bool = Field(False, description="cryptographically secure noise (slower)")
    dp_clipping: Literal["ghost", "hooks"] = Field(
        "ghost", description="per-sample clipping: ghost clipping (norms without materialising "
                             "per-sample gradients; faster) or Opacus' per-sample hooks. "
                             "adversarial+dp always uses hooks")
    checkpoint_every: int = Field(1, ge=0, description="save a resumable training state every "
                                                         "N epochs (0: never)")
    seed: int = Field(0, description="random seed")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    revision: str | None = Field(None, description="hub model revision (a tag or commit) to "
                                                   "pin the backbone to")
    trust_remote_code: bool = Field(False, description="run code shipped with a hub model")

    @model_validator(mode="before")
    @classmethod
    def _mode_defaults(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        mode = values.get("mode", "clean")
        defaults = MODE_DEFAULTS["private" if mode in PRIVATE_MODES else "clean"]
        merged = {**defaults, **values}
        if "word_recognition" not in merged and mode in WORD_RECOGNITION_DEFAULTS:
            merged["word_recognition"] = WORD_RECOGNITION_DEFAULTS[mode]
        defence = merged.get("substitution_defence", "off")
        if defence in SUBSTITUTION_SET_DEFAULTS:
            size, cosine = SUBSTITUTION_SET_DEFAULTS[defence]
            merged.setdefault("substitution_set_size", size)
            merged.setdefault("substitution_min_cos_sim", cosine)
        if "dp_head_init" not in merged and mode in PRIVATE_MODES:
            merged["dp_head_init"] = "centroid-span" if merged["pooling"] == "mean" else "random"
        return merged

    @field_validator("mode", mode="before")
    @classmethod
    def _known_mode(cls, value: Any) -> Any:
        if value not in MODES:
            raise ValueError(f"unknown training mode {value!r}; choose one of {', '.join(MODES)}")
        return value

    @property
    def private(self) -> bool:
        """Whether this mode trains with DP-SGD."""
        return self.mode in PRIVATE_MODES

    @property
    def adversarial(self) -> bool:
        """Whether this mode adds adversarial examples."""
        return self.mode in ADVERSARIAL_MODES

    @model_validator(mode="after")
    def _one_privacy_knob(self) -> TrainConfig:
        if self.private and (self.dp_epsilon is None) == (self.dp_noise_multiplier is None):
            raise ValueError("dp mode needs exactly one of dp_epsilon (a budget) and "
                             "dp_noise_multiplier (a fixed noise); set the other to None")
        if self.private and self.substitution_defence == "ascc":
            raise ValueError("substitution_defence='ascc' adds a second, adversarial term to "
                             "each batch's loss, which the private trainer's per-sample "
                             "clipping does not handle; use 'safer' or 'sem' with the private "
                             "modes")
        if self.private and self.word_recognition == "train":
            raise ValueError("word_recognition='train' builds its dictionary from the training "
                             "texts and saves it unprotected, which DP does not cover; use "
                             "'public' (the tokenizer's vocabulary) or 'off'")
        if self.private and self.dp_head_init != "random":
            if self.pooling != "mean":
                raise ValueError(f"dp_head_init={self.dp_head_init!r} needs pooling='mean' (the "
                                 f"head reads the mean-pooled embedding); use "
                                 f"dp_head_init='random'")
            if self.dp_epsilon is not None and self.dp_centroid_noise == 0:
                raise ValueError("dp_centroid_noise 0 releases the centroids without privacy, "
                                 "which no budget covers; set it above 0 or use "
                                 "dp_head_init='random'")
        return self

    @classmethod
    def from_sources(cls, file: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """Defaults < TOML ``file`` < ``overrides`` (``None`` overrides are ignored).

        Raises:
            ConfigError: If the file cannot be read or a value is invalid or unknown.
        """
        values = read_toml(file, what="training config") if file is not None else {}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return build_model(cls, values, what="training config")
