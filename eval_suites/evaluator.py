"""Evaluate a model: run the suites, judge the release gate, write results, reports, a manifest.

``guard eval`` is a thin layer over :func:`evaluate`; a script or notebook gets the same results,
files and verdict without a subprocess::

    from eval_suites import EvalConfig, evaluate

    outcome = evaluate(EvalConfig(model="candidate", baseline="released",
                                  gate_policy="default"), out="guard-results")
    print(outcome.passed, outcome.results.suite("accuracy").metric("accuracy").value)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval_suites.config import DEFAULT_SUITES, EvalConfig
from eval_suites.gate import DEFAULT_POLICY, GatePolicy
from guard.errors import ConfigError
from guard.results import RESULTS_FILE, GateResult, PolicyInfo, ResultsDocument

#: A function that shows one progress message.
Log = Callable[[str], None]


@dataclass(frozen=True)
class EvalPlan:
    """What a configuration resolves to before any model loads.

    Attributes:
        suites: Suites to run, in order (the configuration's, then the policy's).
        options: Suite name -> options, with the policy's confidence filled in.
        policy: The release-gate policy, or ``None``.
        policy_path: Its file.
        model_kind: ``classifier``, or ``generator`` for suites that evaluate a chat model
            (``model`` and ``baseline`` then name chat models; default: the embedded tutor).
    """

    suites: tuple[str, ...]
    options: dict[str, dict[str, Any]]
    policy: GatePolicy | None
    policy_path: Path | None
    model_kind: str = "classifier"


@dataclass(frozen=True)
class EvalOutcome:
    """What :func:`evaluate` produced.

    Attributes:
        config: The configuration evaluated.
        results: The candidate's results document (with the gate verdict, when judged).
        baseline: The baseline's results document, when a baseline was given.
        model_location: Where the candidate was loaded from (the cached default assistant's
            folder when ``config.model`` is ``None``).
        files: The files written, when an output folder was given.
    """

    config: EvalConfig
    results: ResultsDocument
    baseline: ResultsDocument | None
    model_location: str
    files: tuple[Path, ...] = ()

    @property
    def gate(self) -> GateResult | None:
        """The release gate's verdict, or ``None`` without a policy."""
        return self.results.gate

    @property
    def passed(self) -> bool:
        """False only when a gate was judged and failed."""
        return self.gate is None or self.gate.passed


def plan(config: EvalConfig) -> EvalPlan:
    """Resolve suites, options and policy, checking names before any model loads.

    Raises:
        ConfigError: For an unreadable policy, options for a suite not run, or a confidence
            that contradicts the policy's.
        UnknownNameError: For an unknown suite (with close names).
    """
    from eval_suites.registry import SUITES

    policy_path = None
    policy = None
    if config.gate_policy is not None:
        policy_path = DEFAULT_POLICY if config.gate_policy == "default" else \
            Path(config.gate_policy)
        policy = GatePolicy.from_toml(policy_path)
    suites = list(config.suites or (() if policy else DEFAULT_SUITES))
    for name in suites:
        SUITES.entry(name)
    if policy is not None:
        suites += [s for s in policy.suites() if s not in suites]
    if not suites:
        raise ConfigError("no suites to run; name at least one (see `guard ls suites`)")
    options = {name: dict(opts) for name, opts in config.options.items()}
    for name in options:
        if name not in suites:
            raise ConfigError(f"options name suite {name!r}, which is not among the suites run "
                              f"({', '.join(suites)})")
    if policy is not None:
        for name in suites:
            chosen = options.setdefault(name, {}).setdefault("confidence", policy.confidence)
            if chosen != policy.confidence:
                raise ConfigError(f"{name}.confidence={chosen} contradicts the policy's "
                                  f"confidence {policy.confidence}")
    kinds = {name: SUITES.get(name).model_kind for name in suites}
    if len(set(kinds.values())) > 1:
        generators = sorted(n for n, k in kinds.items() if k == "generator")
        raise ConfigError(f"{', '.join(generators)} evaluate{'s' if len(generators) == 1 else ''}"
                          " a chat model, the other suites a classifier: run them separately")
    return EvalPlan(tuple(suites), options, policy, policy_path, next(iter(kinds.values())))


def _load(config: EvalConfig, run: EvalPlan, model_dir: str) -> tuple[Any, Any]:
    """The model of the plan's kind, and the rows to evaluate it on."""
    from guard.data import load_eval_data

    if run.model_kind == "generator":
        from eval_suites.generation import KIND_FILES, bundled_prompts
        from guard.models.tutor import TutorGenerator

        generator = TutorGenerator.from_pretrained(model_dir, device=config.device,
                                                   trust_remote_code=config.trust_remote_code)
        prompts = bundled_prompts() if config.data == "bundled" else load_eval_data(
            config.data, split=config.split, text_column=config.text_column,
            label_column=config.label_column, allowed_labels=list(KIND_FILES))
        return generator, prompts
    from guard.models.classifier import HFClassifier

    model = HFClassifier.from_pretrained(model_dir, device=config.device,
                                         trust_remote_code=config.trust_remote_code)
    return model, load_eval_data(config.data, split=config.split,
                                 text_column=config.text_column,
                                 label_column=config.label_column, allowed_labels=model.labels)


def _results(config: EvalConfig, run: EvalPlan, model_dir: str, log: Log,
             executor: Any) -> ResultsDocument:
    from eval_suites.runner import results_document, run_suites
    from training.checkpoint import read_manifest

    model, data = _load(config, run, model_dir)
    log(f"evaluating {model_dir} on {data.source} ({len(data)} rows): {', '.join(run.suites)}")
    if executor is not None and run.model_kind == "classifier":
        from guard.models.sharded import ShardedClassifier

        model = ShardedClassifier(model, executor)
    results = run_suites(model, data, run.suites, seed=config.seed, options=run.options)
    manifest = read_manifest(model_dir) if run.model_kind == "classifier" and \
        Path(model_dir).is_dir() else None
    return results_document(results, model=model, data=data, seed=config.seed,
                            command=config.to_command(), model_manifest=manifest)


def _default_model(log: Log, progress: bool) -> str:
    from training.checkpoint import read_manifest
    from training.default_model import default_model_dir, ensure_default_model

    if read_manifest(default_model_dir()) is None:
        log("training the default assistant model (first use only; cached afterwards)")
    return str(ensure_default_model(progress=progress))


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def evaluate(config: EvalConfig, *, out: str | Path | None = None, executor: Any = None,
             progress: bool = True, log: Log | None = None) -> EvalOutcome:
    """Run the configured suites on the model (and baseline), judge the gate, write files.

    Args:
        config: What to evaluate.
        out: Folder for ``results.json``, ``baseline/results.json``, ``report.md``,
            ``report.html``, ``junit.xml`` and ``manifest.json``; ``None`` writes nothing.
            A folder made here is removed again if the run fails before writing into it.
        executor: A :class:`guard.executors.RayExecutor` for multi-batch inference and attacks
            (the caller shuts it down); ``None`` runs here. Results equal the local run's.
        progress: Show progress bars and messages.
        log: Where messages go (default: standard error when ``progress``).

    Returns:
        The results, the baseline's, the gate verdict and the files written. A failed gate is
        an outcome (``outcome.passed`` is false), not an exception.

    Raises:
        ConfigError: For a bad configuration or policy, or a policy the results cannot judge.
        DataError: For unreadable data or data that does not fit the model.
        ModelNotFoundError: For a model that cannot be found.
    """
    run = plan(config)
    say: Log = log or (_stderr if progress else (lambda message: None))
    if out is None:
        return _evaluate(config, run, None, executor, say, progress)
    from guard.atomic import ensure_writable_dir, removing_on_failure

    folder = Path(out)
    # Also removes the temporary files of killed earlier runs.
    with removing_on_failure(ensure_writable_dir(folder)):
        return _evaluate(config, run, folder, executor, say, progress)


def _evaluate(config: EvalConfig, run: EvalPlan, out: Path | None, executor: Any, log: Log,
              progress: bool) -> EvalOutcome:
    from eval_suites.gate import evaluate_gate
    from guard.provenance import sha256_file

    if config.model is not None:
        model_dir = config.model
    elif run.model_kind == "generator":
        from guard.models.tutor import EMBEDDED

        model_dir = EMBEDDED
    else:
        model_dir = _default_model(log, progress)
    results = _results(config, run, model_dir, log, executor)
    baseline = None
    if config.baseline is not None:
        baseline = _results(config, run, config.baseline, log, executor)
    if run.policy is not None and run.policy_path is not None:
        results = results.model_copy(update={
            "policy": PolicyInfo(path=str(run.policy_path), sha256=sha256_file(run.policy_path),
                                 resolved=run.policy.model_dump()),
            "gate": evaluate_gate(run.policy, results, baseline)})
    outcome = EvalOutcome(config, results, baseline, model_dir)
    if out is None:
        return outcome
    return _write(outcome, run, out)


def _write(outcome: EvalOutcome, run: EvalPlan, out: Path) -> EvalOutcome:
    from dataclasses import replace

    from eval_suites.audit import write_manifest
    from eval_suites.runner import write_json_atomic
    from reports import write_reports

    written = []
    if outcome.baseline is not None:
        written.append(write_json_atomic(outcome.baseline, out / "baseline" / RESULTS_FILE))
    results_path = write_json_atomic(outcome.results, out / RESULTS_FILE)
    written.append(results_path)
    written += write_reports(results_path, ["md", "html", "junit"], out_dir=out)
    written.append(write_manifest(out, outcome, run))
    return replace(outcome, files=tuple(written))
