"""Run an attack recipe over a data set: seeded per example, resumable, optionally parallel."""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attacks import RECIPES
from attacks.records import AttackRecord, read_records, trim_torn_tail, write_records
from guard.atomic import ensure_writable_dir, exclusive_lock, write_text_atomic
from guard.data import TextDataset
from guard.errors import ConfigError, DataError

if TYPE_CHECKING:
    from guard.executors import RayExecutor

RUN_FILE = "run.json"
PARTIAL_FILE = "records.partial.jsonl"
RECORDS_FILE = "records.jsonl"
#: Held (``flock``) by the run writing into an output folder; the kernel drops it on any exit.
LOCK_FILE = ".guard-attack.lock"


@dataclass(frozen=True)
class AttackRunConfig:
    """What defines an attack run; a resumed run must match it exactly."""

    recipe: str
    model: str
    model_sha256: str | None
    data_source: str
    data_sha256: str
    n: int
    seed: int
    query_budget: int | None


@dataclass(frozen=True)
class AttackRun:
    """A finished run.

    Attributes:
        config: What was run.
        records: One record per attacked example, by index.
        constraint_set: The recipe's constraint set.
        seconds: Wall time of this invocation (resumed examples excluded).
        attacked_now: Examples attacked in this invocation (the rest came from a checkpoint).
    """

    config: AttackRunConfig
    records: tuple[AttackRecord, ...]
    constraint_set: str
    seconds: float
    attacked_now: int


class _Attacker:
    """Builds the model and the recipe once and attacks examples by index."""

    def __init__(self, model: Any, recipe: str, query_budget: int | None,
                 device: str = "cpu") -> None:
        from attacks.textattack_env import load_textattack
        from attacks.wrapper import CachingModelWrapper
        from guard.models.classifier import HFClassifier

        self.textattack = load_textattack()
        classifier = model if isinstance(model, HFClassifier) else \
            HFClassifier.from_pretrained(model, device=device)
        self.classifier = classifier
        self.wrapper = CachingModelWrapper(classifier)
        self.built = RECIPES.get(recipe)(self.wrapper, query_budget=query_budget)  # type: ignore[operator]

    def attack(self, index: int, text: str, label: str, seed: int) -> AttackRecord:
        labels = self.classifier.labels
        self.textattack.shared.utils.set_seed(seed)
        result = self.built.attack.attack(text, labels.index(label))
        original, perturbed = result.original_result, result.perturbed_result
        status = {
            "SuccessfulAttackResult": "successful", "FailedAttackResult": "failed",
            "SkippedAttackResult": "skipped", "MaximizedAttackResult": "maximized",
        }[type(result).__name__]
        changed = original.attacked_text.all_words_diff(perturbed.attacked_text)
        total = max(1, len(original.attacked_text.words))
        return AttackRecord(
            index=index, recipe=self.built.name, constraint_set=self.built.constraint_set,
            seed=seed, status=status,  # type: ignore[arg-type]
            original_text=original.attacked_text.text,
            perturbed_text=perturbed.attacked_text.text, label=label,
            original_prediction=labels[int(original.output)],
            perturbed_prediction=labels[int(perturbed.output)],
            queries=int(perturbed.num_queries), words_perturbed=len(changed),
            words_total=len(original.attacked_text.words),
            fraction_perturbed=round(len(changed) / total, 6))


_WORKER: _Attacker | None = None


def _worker_init(model: str, recipe: str, query_budget: int | None, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    global _WORKER
    _WORKER = _Attacker(model, recipe, query_budget)


def _worker_attack(job: tuple[int, str, str, int]) -> str:
    if _WORKER is None:
        raise RuntimeError("worker not initialised")
    return _WORKER.attack(*job).to_json()


def _check_inputs(classifier: Any, data: TextDataset, n: int) -> None:
    if len(data) == 0 or n < 1:
        raise DataError(f"{data.source}: nothing to attack (the data set is empty or n < 1)")
    unknown = sorted(set(data.labels[:n]) - set(classifier.labels))
    if unknown:
        raise DataError(f"{data.source}: labels {unknown} are not among the model's labels "
                        f"{list(classifier.labels)}; attack data labelled like the model")
    lengths = [len(classifier.tokenizer(t)["input_ids"]) for t in data.texts[:n]]
    too_long = [i for i, length in enumerate(lengths) if length > classifier.max_length]
    if too_long:
        raise DataError(
            f"{data.source}: rows {[i + 1 for i in too_long[:5]]} are longer than the model's "
            f"maximum of {classifier.max_length} tokens (longest: {max(lengths)}); the attack "
            "would perturb words the model never sees. Shorten or drop them")


@contextlib.contextmanager
def _holding(out: Path) -> Iterator[None]:
    """Create ``out`` and hold its lock for the block, or refuse when another run holds it."""
    ensure_writable_dir(out)
    lock = out / LOCK_FILE
    with contextlib.ExitStack() as stack:
        try:
            held = stack.enter_context(exclusive_lock(lock))
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot create the lock file {lock} "
                              f"({exc.strerror or exc})") from exc
        if not held:
            raise ConfigError(f"--out {out} is in use: another attack run is writing into it "
                              f"(it holds the lock {lock}). Wait for that run to end, or pass "
                              "another --out")
        yield


def _prepare_out(out: Path, config: AttackRunConfig) -> dict[int, AttackRecord]:
    """Check the output folder and return the records a previous run already finished.

    A torn last line of the partial records (a kill while writing it) is cut off first, so
    that the records appended now start on a line of their own.
    """
    run_file = out / RUN_FILE
    if run_file.is_file():
        try:
            previous = json.loads(run_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--out {out}: {RUN_FILE} cannot be read ({exc}); use a new --out "
                              "or delete that folder") from exc
        if not isinstance(previous, dict):
            raise ConfigError(f"--out {out}: {RUN_FILE} is not an attack run description; use "
                              "a new --out or delete that folder")
        if previous != asdict(config):
            changed = sorted(k for k in set(previous) | set(asdict(config))
                             if previous.get(k) != asdict(config).get(k))
            raise ConfigError(f"--out {out} holds a different attack run (differs in "
                              f"{changed}); use a new --out or delete that folder")
    else:
        write_text_atomic(run_file, json.dumps(asdict(config), indent=2) + "\n")
    done: dict[int, AttackRecord] = {}
    if (out / PARTIAL_FILE).is_file():
        trim_torn_tail(out / PARTIAL_FILE)
    for name in (RECORDS_FILE, PARTIAL_FILE):
        if (out / name).is_file():
            for record in read_records(out / name):
                done[record.index] = record
    return done


def run_attack(
    model: Any,
    data: TextDataset,
    recipe: str,
    *,
    n: int | None = None,
    seed: int = 0,
    query_budget: int | None = None,
    out: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
    seeds: Sequence[int] | None = None,
    executor: RayExecutor | None = None,
) -> AttackRun:
    """Attack the first ``n`` examples of ``data`` with ``recipe``.

    Every example is attacked with seed ``seed + index``, so results do not depend on order,
    workers or interruptions. With ``out``, each finished record is appended to
    ``records.partial.jsonl`` as it completes; a rerun with the same settings resumes there,
    and ``records.jsonl`` (sorted by index) is written atomically at the end.

    Args:
        model: An ``HFClassifier`` or a model folder (workers > 1 need a folder).
        data: Labelled texts.
        recipe: Recipe name (``guard ls recipes``).
        n: How many examples, from the start (default: all).
        seed: Run seed.
        query_budget: Most model queries per example.
        out: Output folder for records and checkpoints; ``None`` keeps them in memory.
        workers: Processes attacking in parallel (each with its own model copy).
        progress: Show a progress bar.
        seeds: One seed per example instead of ``seed + index`` (in-memory runs only), for
            callers whose examples must not depend on their neighbours (private training).
        executor: Attack on Ray workers instead (one model replica each; ``workers`` is then
            ignored). A :class:`~guard.models.sharded.ShardedClassifier` brings its own.

    Raises:
        UnknownNameError: For an unknown recipe (with suggestions).
        DataError: For empty data, labels the model lacks, or over-long texts.
        ConfigError: For an unwritable or mismatched output folder, one that another run is
            writing into, or bad settings.
    """
    from guard.models.classifier import HFClassifier

    RECIPES.entry(recipe)  # unknown names fail before any model loads
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    executor = executor if executor is not None else getattr(model, "executor", None)
    classifier = model if isinstance(model, HFClassifier) else HFClassifier.from_pretrained(
        model, device="cpu")
    count = min(n if n is not None else len(data), len(data))
    _check_inputs(classifier, data, count)
    location = classifier.source.location if classifier.source else str(model)
    if executor is not None and (classifier.source is None or classifier.source.kind != "local"):
        raise ConfigError("attacks on Ray workers need a model folder every worker can read")
    config = AttackRunConfig(recipe, location, classifier.fingerprint, data.source, data.sha256,
                             count, seed, query_budget)
    if seeds is not None and (out is not None or len(seeds) < count):
        raise ConfigError("per-example seeds need one seed per example and no output folder")
    out_dir = Path(out) if out is not None else None
    # One run at a time per output folder: a second one would interleave its records.
    with _holding(out_dir) if out_dir is not None else contextlib.nullcontext():
        done = _prepare_out(out_dir, config) if out_dir is not None else {}
        return _attack_all(classifier, data, recipe, done=done, count=count, seed=seed,
                           seeds=seeds, query_budget=query_budget, out_dir=out_dir,
                           location=location, workers=workers, progress=progress,
                           executor=executor, config=config)


def _attack_all(classifier: Any, data: TextDataset, recipe: str, *,
                done: dict[int, AttackRecord], count: int, seed: int,
                seeds: Sequence[int] | None, query_budget: int | None, out_dir: Path | None,
                location: str, workers: int, progress: bool, executor: RayExecutor | None,
                config: AttackRunConfig) -> AttackRun:
    """The attack loop of :func:`run_attack`, with the output folder (if any) locked."""
    from tqdm.auto import tqdm

    todo = [(i, data.texts[i], data.labels[i], seed + i if seeds is None else int(seeds[i]))
            for i in range(count) if i not in done]
    start = time.perf_counter()
    attacker = _Attacker(classifier, recipe, query_budget)  # also validates the recipe here
    partial = open(out_dir / PARTIAL_FILE, "a", encoding="utf-8") if out_dir else None  # noqa: SIM115
    bar = tqdm(total=count, initial=count - len(todo), desc=f"attack {recipe}", unit="ex",
               disable=not progress, dynamic_ncols=True)
    try:
        for line in _results(attacker, todo, location, recipe, query_budget, workers, executor):
            record = AttackRecord.from_dict(json.loads(line))
            done[record.index] = record
            if partial is not None:
                partial.write(line + "\n")
                partial.flush()
                os.fsync(partial.fileno())
            bar.update(1)
            success = sum(r.status == "successful" for r in done.values())
            bar.set_postfix(success=f"{success}/{len(done)}")
    finally:
        bar.close()
        if partial is not None:
            partial.close()
    records = tuple(sorted(done.values(), key=lambda r: r.index))
    if out_dir is not None:
        write_text_atomic(out_dir / RECORDS_FILE, write_records(records))
        (out_dir / PARTIAL_FILE).unlink(missing_ok=True)
    return AttackRun(config, records, attacker.built.constraint_set,
                     time.perf_counter() - start, len(todo))


def _results(attacker: _Attacker, todo: Sequence[tuple[int, str, str, int]], model: str,
             recipe: str, query_budget: int | None, workers: int,
             executor: RayExecutor | None) -> Iterator[str]:
    if executor is not None:
        init_args = (model, recipe, query_budget, executor.cpus_per_worker)
        for _, line in executor.map("attacks.runner:_worker_init", init_args,
                                    "attacks.runner:_worker_attack", todo):
            yield line
        return
    if workers == 1 or len(todo) <= 1:
        for job in todo:
            yield attacker.attack(*job).to_json()
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_worker_init,
                  initargs=(model, recipe, query_budget, threads)) as pool:
        yield from pool.imap_unordered(_worker_attack, todo)
