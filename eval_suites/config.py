"""What an evaluation runs: one validated configuration for the CLI, scripts and replays."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from guard.config import build_model, read_toml

#: Suites run when neither the configuration nor a gate policy names any.
DEFAULT_SUITES = ("accuracy", "latency")


class EvalConfig(BaseModel):
    """An evaluation: the model, its baseline, the data, the suites and the release gate.

    Everything that decides the results is here, so a manifest that records the resolved
    configuration replays the run (:func:`eval_suites.replay`). Where and how the run happens
    (the output folder, a Ray executor, progress output) are arguments of
    :func:`eval_suites.evaluate` instead. Unknown keys are rejected. Precedence when the CLI
    builds one: these defaults < a ``--config`` TOML file < flags.

    Example ``eval.toml``::

        model = "checkpoints/candidate"
        baseline = "checkpoints/released"
        gate_policy = "default"
        suites = ["accuracy", "toxicity"]
        [options.toxicity]
        bootstrap_resamples = 200
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(None, description="classifier folder (e.g. from `guard train`) or "
                                                "hub id; None: the cached default assistant. "
                                                "For generator suites (generation): a chat "
                                                "model, 'tutor' or None for the embedded tutor")
    baseline: str | None = Field(None, description="released model to compare against on the "
                                                   "same suites, data and seed")
    gate_policy: str | None = Field(None, description="release-gate policy TOML, or 'default' "
                                                      "for the shipped one; None: no gate")
    data: str = Field("bundled", description="'bundled', a folder of split files, or one file")
    split: Literal["train", "validation", "test"] = Field(
        "test", description="split of 'bundled' or of a data folder")
    suites: tuple[str, ...] = Field(
        (), description="suites to run (`guard ls suites`); empty: accuracy and latency, "
                        "plus whatever the gate policy needs")
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="suite name -> options of that suite")
    seed: int = Field(0, description="seed of every suite")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    text_column: str = Field("text", description="text column of user data")
    label_column: str = Field("label", description="label column of user data")
    trust_remote_code: bool = Field(False, description="run code shipped with a hub model")

    @field_validator("suites", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):  # "accuracy,latency", as on the command line
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @classmethod
    def from_sources(cls, file: str | Path | None = None, **overrides: Any) -> EvalConfig:
        """Defaults < TOML ``file`` < ``overrides`` (``None`` overrides are ignored).

        ``options`` merge option by option: an override of ``latency.requests`` keeps the
        file's ``latency.warmup``.

        Raises:
            ConfigError: If the file cannot be read or a value is invalid or unknown.
        """
        values = read_toml(file, what="evaluation config") if file is not None else {}
        options: Mapping[str, Mapping[str, Any]] = overrides.pop("options", None) or {}
        values.update({k: v for k, v in overrides.items() if v is not None})
        base = values.get("options", {})
        if options and isinstance(base, Mapping):  # a malformed file value fails validation
            merged = {name: dict(opts) if isinstance(opts, Mapping) else opts
                      for name, opts in base.items()}
            for name, opts in options.items():
                current = merged.get(name)
                merged[name] = {**current, **opts} if isinstance(current, dict) else dict(opts)
            values["options"] = merged
        what = f"evaluation config {file}" if file is not None else "evaluation config"
        return build_model(cls, values, what=what)

    def to_command(self) -> list[str]:
        """The ``guard eval`` command line that runs this configuration (non-defaults only)."""
        import json

        argv = ["guard", "eval"]
        defaults = type(self)()
        for flag, field in (("--model", "model"), ("--baseline", "baseline"),
                            ("--gate-policy", "gate_policy"), ("--data", "data"),
                            ("--split", "split"), ("--seed", "seed"), ("--device", "device"),
                            ("--text-column", "text_column"),
                            ("--label-column", "label_column")):
            value = getattr(self, field)
            if value != getattr(defaults, field):
                argv += [flag, str(value)]
        if self.suites:
            argv += ["--suite", ",".join(self.suites)]
        for suite, opts in self.options.items():
            for key, value in opts.items():
                argv += ["--set", f"{suite}.{key}={json.dumps(value)}"]
        if self.trust_remote_code:
            argv.append("--trust-remote-code")
        return argv
