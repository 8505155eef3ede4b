"""``guard eval``: run suites, judge a release gate, write results, reports and a manifest."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from guard.cli.options import add_executor_arguments, build_executor, parse_dotted_options
from guard.errors import ConfigError

DEFAULT_SUITES = "accuracy,latency"


def add_parser(commands: Any) -> None:
    """Register the ``eval`` subcommand."""
    parser = commands.add_parser(
        "eval",
        help="evaluate a model, judge a release gate, write results and reports",
        description=(
            "Run evaluation suites on a classifier and write results.json (versioned schema, "
            "see docs/results-schema.md), report.md, report.html, junit.xml and an audit "
            "manifest.json into --out. With --policy the release gate is judged (exit 1 when "
            "it fails); with --baseline the baseline model is evaluated on the same items for "
            "the policy's margins. Without --model, the default assistant (all-MiniLM-L6-v2 "
            "fine-tuned on the bundled metaverse intents) is trained on first use and cached. "
            "--replay MANIFEST reruns a recorded evaluation and says whether it matches. "
            "--executor ray runs multi-batch inference and attacks on Ray workers (the latency "
            "suite always times the local model); results equal the local run's."
        ),
    )
    parser.add_argument("--model", default=None,
                        help="classifier folder (e.g. from `guard train`) or hub id; "
                             "default: the cached default assistant")
    parser.add_argument("--baseline", default=None,
                        help="released model to compare against (same suites, data and seed)")
    parser.add_argument("--policy", default=None,
                        help="release-gate policy TOML (see `guard validate`); 'default' for "
                             "the shipped policy")
    parser.add_argument("--data", default="bundled",
                        help="'bundled' (default), a folder of split files, or one file")
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"),
                        help="split of 'bundled' or a data folder to evaluate on (test)")
    parser.add_argument("--suite", default=None,
                        help=f"comma-separated suites (see `guard ls suites`); default "
                             f"{DEFAULT_SUITES}, plus whatever the policy needs")
    parser.add_argument("--set", action="append", default=[], metavar="SUITE.OPTION=VALUE",
                        help="suite option, e.g. latency.requests=100 (repeatable)")
    parser.add_argument("--out", default="guard-results", help="output folder (guard-results)")
    parser.add_argument("--json", action="store_true",
                        help="print the results document to stdout instead of a table")
    parser.add_argument("--seed", type=int, default=0, help="seed of every suite (0)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--text-column", default="text", help="text column of user data")
    parser.add_argument("--label-column", default="label", help="label column of user data")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run code shipped with a hub model (off by default)")
    parser.add_argument("--replay", default=None, metavar="MANIFEST",
                        help="rerun the evaluation recorded in an audit manifest and compare")
    parser.add_argument("--timing-tolerance", type=float, default=0.5,
                        help="with --replay: relative tolerance for timing metrics (0.5 = "
                             "±50%%, never tighter than ±5 ms); other metrics must match exactly")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_executor_arguments(parser)
    parser.set_defaults(handler=run)


def _summary(document: dict[str, Any]) -> str:
    rows = [("suite", "metric", "value", "CI", "n")]
    for suite in document["suites"]:
        for m in suite["metrics"]:
            if m["name"].startswith("f1/"):
                continue  # per-class rows are in the reports
            digits = 4 if m["unit"] == "ratio" else 2
            rows.append((suite["suite"], f"{m['name']} ({m['unit']})", f"{m['value']:.{digits}f}",
                         f"[{m['ci_low']:.{digits}f}, {m['ci_high']:.{digits}f}]", str(m["n"])))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    gate = document.get("gate")
    if gate:
        lines += ["", f"release gate: {'PASSED' if gate['passed'] else 'FAILED'}"]
        lines += [f"  {c['outcome'].upper():<12} {c['name']}: {c['explanation']}"
                  for c in gate["checks"]]
    return "\n".join(lines)


def _resolve_policy(spec: str | None) -> tuple[Any, Path | None]:
    if spec is None:
        return None, None
    from eval_suites.gate import DEFAULT_POLICY, GatePolicy

    path = DEFAULT_POLICY if spec == "default" else Path(spec)
    return GatePolicy.from_toml(path), path


def _plan(args: argparse.Namespace, policy: Any) -> tuple[list[str], dict[str, dict[str, Any]]]:
    from eval_suites.runner import parse_suite_list

    suites = parse_suite_list(args.suite or ("" if policy else DEFAULT_SUITES))
    if policy is not None:
        suites += [s for s in policy.suites() if s not in suites]
    if not suites:
        raise ConfigError("--suite is empty; name at least one suite (see `guard ls suites`)")
    options = parse_dotted_options(args.set, flag="--set", example="latency.requests=50")
    for name in options:
        if name not in suites:
            raise ConfigError(f"--set names suite {name!r}, which is not among the suites run "
                              f"({', '.join(suites)})")
    if policy is not None:
        for name in suites:
            chosen = options.setdefault(name, {}).setdefault("confidence", policy.confidence)
            if chosen != policy.confidence:
                raise ConfigError(f"--set {name}.confidence={chosen} contradicts the policy's "
                                  f"confidence {policy.confidence}")
    return suites, options


def _evaluate(model_dir: str, args: argparse.Namespace, suites: list[str],
              options: dict[str, dict[str, Any]], log: Any, executor: Any) -> dict[str, Any]:
    from eval_suites.runner import results_document, run_suites
    from guard.data import load_eval_data
    from guard.models.classifier import HFClassifier
    from training.checkpoint import read_manifest

    model = HFClassifier.from_pretrained(model_dir, device=args.device,
                                         trust_remote_code=args.trust_remote_code)
    data = load_eval_data(args.data, split=args.split, text_column=args.text_column,
                          label_column=args.label_column, allowed_labels=model.labels)
    log(f"evaluating {model_dir} on {data.source} ({len(data)} rows): {', '.join(suites)}")
    if executor is not None:
        from guard.models.sharded import ShardedClassifier

        model = ShardedClassifier(model, executor)
    results = run_suites(model, data, suites, seed=args.seed, options=options)
    manifest = read_manifest(model_dir) if Path(model_dir).is_dir() else None
    return results_document(results, model=model, data=data, seed=args.seed,
                            command=["guard", *args.argv], model_manifest=manifest)


def _default_model(args: argparse.Namespace, log: Any) -> str:
    from training.checkpoint import read_manifest
    from training.default_model import default_model_dir, ensure_default_model

    if read_manifest(default_model_dir()) is None:
        log("training the default assistant model (first use only; cached afterwards)")
    return str(ensure_default_model(progress=not args.quiet))


def run(args: argparse.Namespace) -> int:
    """Evaluate (or replay), judge the gate, write files; 1 when the gate fails."""
    if args.replay is not None:
        return replay(args)
    from guard.atomic import ensure_writable_dir, removing_on_failure

    policy, policy_path = _resolve_policy(args.policy)
    suites, options = _plan(args, policy)
    out = Path(args.out)
    # Also removes the temporary files of killed earlier runs; a folder made here goes again
    # if the run fails before writing into it.
    with removing_on_failure(ensure_writable_dir(out)):
        return _run(args, out, policy, policy_path, suites, options)


def _run(args: argparse.Namespace, out: Path, policy: Any, policy_path: Path | None,
         suites: list[str], options: dict[str, dict[str, Any]]) -> int:
    from eval_suites.audit import write_manifest
    from eval_suites.gate import evaluate_gate
    from eval_suites.runner import RESULTS_FILE, write_json_atomic
    from guard.provenance import sha256_file
    from reports import write_reports

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    executor = build_executor(args, device=args.device)  # starts nothing until first used
    model_dir = args.model if args.model is not None else _default_model(args, log)
    try:
        document = _evaluate(model_dir, args, suites, options, log, executor)
        baseline = None
        if args.baseline is not None:
            baseline = _evaluate(args.baseline, args, suites, options, log, executor)
            write_json_atomic(baseline, out / "baseline" / RESULTS_FILE)
    finally:
        if executor is not None:
            executor.shutdown()
    if policy is not None and policy_path is not None:
        document["policy"] = {"path": str(policy_path), "sha256": sha256_file(policy_path),
                              "resolved": policy.model_dump()}
        document["gate"] = evaluate_gate(policy, document, baseline).to_dict()
    results_path = write_json_atomic(document, out / RESULTS_FILE)
    written = write_reports(results_path, ["md", "html", "junit"], out_dir=out)
    manifest = write_manifest(out, args=args, model_dir=model_dir, suites=suites,
                              options=options, document=document, baseline=baseline,
                              policy_path=policy_path)
    if args.json:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(_summary(document))
        print(f"\nwrote {results_path}, {', '.join(p.name for p in written)} and "
              f"{manifest.name}")
    gate = document.get("gate")
    return 1 if gate is not None and not gate["passed"] else 0


def replay(args: argparse.Namespace) -> int:
    """Rerun a recorded evaluation and report whether the results match."""
    from eval_suites.audit import TIMING_FLOOR_MS, compare_replay, load_manifest

    manifest = load_manifest(args.replay)
    recorded = manifest["invocation"]
    replay_out = Path(args.out) if args.out != "guard-results" else (
        Path(args.replay).parent / "replay")
    argv = ["eval", "--out", str(replay_out), "--quiet", "--seed", str(recorded["seed"]),
            "--data", recorded["data"], "--split", recorded["split"],
            "--suite", ",".join(recorded["suites"]), "--device", recorded["device"],
            "--text-column", recorded["text_column"],
            "--label-column", recorded["label_column"]]
    for suite, opts in recorded["options"].items():
        for key, value in opts.items():
            if key != "confidence":
                argv += ["--set", f"{suite}.{key}={json.dumps(value)}"]
    for flag in ("model", "baseline", "policy"):
        if recorded.get(flag) is not None:
            argv += [f"--{flag}", recorded[flag]]
    from guard.cli import build_parser

    replay_args = build_parser().parse_args(argv)
    replay_args.argv = argv
    run(replay_args)
    report = compare_replay(manifest, replay_out, timing_tolerance=args.timing_tolerance)
    for line in report.lines:
        print(line)
    print(f"\nreplay {'MATCHES' if report.matches else 'DOES NOT MATCH'} the manifest "
          f"(exact for deterministic metrics, timings within ±{args.timing_tolerance:.0%} or "
          f"±{TIMING_FLOOR_MS:g} ms); rerun written to {replay_out}")
    return 0 if report.matches else 1
