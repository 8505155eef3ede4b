"""The training configuration: validated, unknown keys rejected, embedded in every manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guard.config import build_model, read_toml


class TrainConfig(BaseModel):
    """How to fine-tune an intent classifier.

    Precedence when the CLI builds one: these defaults < a ``--config`` TOML file < flags.
    The defaults reach 93.3% test accuracy with all-MiniLM-L6-v2 on the bundled intents (seed 0)
    in about three minutes on two CPU cores.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field("default", description="'default' (all-MiniLM-L6-v2), a folder or a hub id")
    data: str = Field("bundled", description="'bundled', a data folder or a single file")
    text_column: str = "text"
    label_column: str = "label"
    mode: Literal["clean", "adversarial", "dp"] = Field(
        "clean", description="clean, adversarial (A2T-style augmentation with attacks), or dp "
                             "(differentially private, Opacus DP-SGD)")
    epochs: int = Field(8, ge=1, le=1000, description="most epochs; early stopping may end sooner")
    patience: int = Field(2, ge=1, description="epochs without validation improvement before stop")
    min_delta: float = Field(0.0, ge=0.0, description="smallest validation gain that counts")
    batch_size: int = Field(16, ge=1, le=4096)
    learning_rate: float = Field(1e-4, gt=0.0, lt=1.0)
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    max_length: int = Field(64, ge=8, le=4096, description="longer texts are truncated")
    adv_recipe: str = Field("deepwordbug", description="attack recipe for adversarial mode")
    adv_fraction: float = Field(0.2, gt=0.0, le=1.0,
                                description="share of training examples attacked per round")
    adv_clean_epochs: int = Field(1, ge=0, description="clean epochs before the first attack")
    adv_every: int = Field(1, ge=1, description="epochs between attack rounds")
    adv_query_budget: int | None = Field(200, ge=1, description="queries per attacked example")
    dp_epsilon: float | None = Field(8.0, gt=0.0, description="privacy budget to spend (dp)")
    dp_delta: float = Field(1e-5, gt=0.0, lt=1.0, description="must be below 1 / training size")
    dp_noise_multiplier: float | None = Field(
        None, ge=0.0, description="fixed noise instead of a target epsilon (set dp_epsilon=None)")
    dp_max_grad_norm: float = Field(1.0, gt=0.0, description="per-sample gradient clip norm")
    dp_accountant: Literal["prv", "rdp"] = "prv"
    dp_trainable: Literal["head", "last-layer", "all"] = Field(
        "head", description="what DP-SGD trains: the classifier head (and pooler), also the "
                            "last encoder layer, or everything but position embeddings")
    dp_secure_mode: bool = Field(False, description="cryptographically secure noise (slower)")
    seed: int = 0
    device: str = "auto"
    revision: str | None = None
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _one_privacy_knob(self) -> TrainConfig:
        if self.mode == "dp" and (self.dp_epsilon is None) == (self.dp_noise_multiplier is None):
            raise ValueError("dp mode needs exactly one of dp_epsilon (a budget) and "
                             "dp_noise_multiplier (a fixed noise); set the other to None")
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
