"""``guard eval``: run suites, judge a release gate, write results, reports and a manifest."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guard.cli.options import (
    add_executor_arguments,
    build_executor,
    parse_dotted_options,
    renamed_flag,
)
from guard.errors import ConfigError

if TYPE_CHECKING:
    from eval_suites.config import EvalConfig
    from guard.results import ResultsDocument


def add_parser(commands: Any) -> None:
    """Register the ``eval`` subcommand."""
    parser = commands.add_parser(
        "eval",
        help="evaluate a model, judge a release gate, write results and reports",
        description=(
            "Run evaluation suites on a classifier and write results.json (versioned schema, "
            "see docs/results-schema.md), report.md, report.html, junit.xml and an audit "
            "manifest.json into --out. With --gate-policy the release gate is judged (exit 1 "
            "when it fails); with --baseline the baseline model is evaluated on the same items "
            "for the policy's margins. Settings: defaults < --config file < flags; the Python "
            "API (eval_suites.evaluate) runs the same configuration. Without --model, the "
            "default assistant (all-MiniLM-L6-v2 fine-tuned on the bundled metaverse intents) "
            "is trained on first use and cached. --replay MANIFEST reruns a recorded "
            "evaluation and says whether it matches. --executor ray runs multi-batch inference "
            "and attacks on Ray workers (the latency suite always times the local model); "
            "results equal the local run's."
        ),
    )
    parser.add_argument("--config", default=None, metavar="TOML",
                        help="evaluation settings file (the keys of eval_suites.EvalConfig: "
                             "model, baseline, gate_policy, data, split, suites, options, seed, "
                             "...); flags override it")
    parser.add_argument("--model", default=None,
                        help="classifier folder (e.g. from `guard train`) or hub id; "
                             "default: the cached default assistant. For the generation suite: "
                             "a chat model folder or hub id; default: the embedded tutor")
    parser.add_argument("--baseline", default=None,
                        help="released model to compare against (same suites, data and seed)")
    parser.add_argument("--gate-policy", default=None, metavar="TOML",
                        help="release-gate policy (see `guard validate`); 'default' for the "
                             "shipped policy")
    parser.add_argument("--policy", default=None, dest="old_policy", metavar="TOML",
                        help="deprecated spelling of --gate-policy (goes in the next release)")
    parser.add_argument("--data", default=None,
                        help="'bundled' (default), a folder of split files, or one file")
    parser.add_argument("--split", default=None, choices=("train", "validation", "test"),
                        help="split of 'bundled' or a data folder to evaluate on (test)")
    parser.add_argument("--suite", default=None,
                        help="comma-separated suites (see `guard ls suites`); default "
                             "accuracy,latency, plus whatever the policy needs")
    parser.add_argument("--set", action="append", default=[], metavar="SUITE.OPTION=VALUE",
                        help="suite option, e.g. latency.requests=100 (repeatable)")
    parser.add_argument("--out", default="guard-results", help="output folder (guard-results)")
    parser.add_argument("--json", action="store_true",
                        help="print the results document to stdout instead of a table")
    parser.add_argument("--seed", type=int, default=None, help="seed of every suite (0)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--text-column", default=None, help="text column of user data (text)")
    parser.add_argument("--label-column", default=None,
                        help="label column of user data (label)")
    parser.add_argument("--trust-remote-code", action="store_true", default=None,
                        help="run code shipped with a hub model (off by default)")
    parser.add_argument("--replay", default=None, metavar="MANIFEST",
                        help="rerun the evaluation recorded in an audit manifest and compare")
    parser.add_argument("--timing-tolerance", type=float, default=0.5,
                        help="with --replay: relative tolerance for timing metrics (0.5 = "
                             "±50%%, never tighter than ±5 ms); other metrics must match exactly")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_executor_arguments(parser)
    parser.set_defaults(handler=run)


def _summary(document: ResultsDocument) -> str:
    from eval_suites.registry import is_headline

    rows = [("suite", "metric", "value", "CI", "n")]
    for suite in document.suites:
        for m in suite.metrics:
            if not is_headline(suite.suite, m.name):
                continue  # per-class rows are in the reports
            digits = 4 if m.unit == "ratio" else 2
            rows.append((suite.suite, f"{m.name} ({m.unit})", f"{m.value:.{digits}f}",
                         f"[{m.ci_low:.{digits}f}, {m.ci_high:.{digits}f}]", str(m.n)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    gate = document.gate
    if gate:
        lines += ["", f"release gate: {'PASSED' if gate.passed else 'FAILED'}"]
        lines += [f"  {c.outcome.upper():<12} {c.name}: {c.explanation}" for c in gate.checks]
    return "\n".join(lines)


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """The :class:`EvalConfig` the flags (over ``--config``) ask for.

    Raises:
        ConfigError: For a malformed ``--set``, both policy spellings, or an invalid value.
    """
    from eval_suites.config import EvalConfig

    policy = renamed_flag(args.gate_policy, args.old_policy, new="--gate-policy", old="--policy",
                          command="eval")
    options = parse_dotted_options(args.set, flag="--set", example="latency.requests=50")
    if args.suite is not None and not args.suite.replace(",", "").strip():
        raise ConfigError("--suite is empty; name at least one suite (see `guard ls suites`)")
    return EvalConfig.from_sources(
        args.config, model=args.model, baseline=args.baseline, gate_policy=policy,
        data=args.data, split=args.split, suites=args.suite, options=options, seed=args.seed,
        device=args.device, text_column=args.text_column, label_column=args.label_column,
        trust_remote_code=args.trust_remote_code)


def run(args: argparse.Namespace) -> int:
    """Evaluate (or replay), judge the gate, write files; 1 when the gate fails."""
    if args.replay is not None:
        return replay(args)
    from eval_suites.evaluator import evaluate, plan

    config = config_from_args(args)
    plan(config)  # names, options and policy are checked before an executor starts
    executor = build_executor(args, device=config.device)  # starts nothing until first used
    try:
        outcome = evaluate(config, out=args.out, executor=executor, progress=not args.quiet)
    finally:
        if executor is not None:
            executor.shutdown()
    document = outcome.results
    if args.json:
        print(json.dumps(document.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(_summary(document))
        results_path, *rest = [f for f in outcome.files if f.parent == Path(args.out)]
        print(f"\nwrote {results_path}, {', '.join(p.name for p in rest[:-1])} and "
              f"{rest[-1].name}")
    return 0 if outcome.passed else 1


def replay(args: argparse.Namespace) -> int:
    """Rerun a recorded evaluation and report whether the results match."""
    from eval_suites.audit import TIMING_FLOOR_MS
    from eval_suites.audit import replay as replay_manifest

    out = Path(args.out) if args.out != "guard-results" else Path(args.replay).parent / "replay"
    report = replay_manifest(args.replay, out=out, timing_tolerance=args.timing_tolerance)
    for line in report.lines:
        print(line)
    print(f"\nreplay {'MATCHES' if report.matches else 'DOES NOT MATCH'} the manifest "
          f"(exact for deterministic metrics, timings within ±{args.timing_tolerance:.0%} or "
          f"±{TIMING_FLOOR_MS:g} ms); rerun written to {out}")
    return 0 if report.matches else 1
