"""``guard eval``: run suites on a model and write results.json and report.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from guard.cli.options import parse_dotted_options
from guard.errors import ConfigError


def add_parser(commands: Any) -> None:
    """Register the ``eval`` subcommand."""
    parser = commands.add_parser(
        "eval",
        help="evaluate a model with suites and write results.json + report.md",
        description=(
            "Run evaluation suites on a classifier and write results.json (versioned schema, "
            "see docs/results-schema.md) and report.md into --out. Without --model, the default "
            "assistant (all-MiniLM-L6-v2 fine-tuned on the bundled metaverse intents) is trained "
            "on first use and cached."
        ),
    )
    parser.add_argument("--model", default=None,
                        help="classifier folder (e.g. from `guard train`) or hub id; "
                             "default: the cached default assistant")
    parser.add_argument("--data", default="bundled",
                        help="'bundled' (default), a folder of split files, or one file")
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"),
                        help="split of 'bundled' or a data folder to evaluate on (test)")
    parser.add_argument("--suite", default="accuracy,latency",
                        help="comma-separated suites (see `guard ls suites`)")
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
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(handler=run)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the folder ({exc.strerror})") from exc
    probe = out / ".guard-write-test"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {out}: the folder is not writable ({exc.strerror})") from exc


def _summary(document: dict[str, Any]) -> str:
    rows = [("suite", "metric", "value", "95% CI", "n")]
    for suite in document["suites"]:
        for m in suite["metrics"]:
            if m["name"].startswith("f1/"):
                continue  # per-class rows are in report.md
            digits = 4 if m["unit"] == "ratio" else 2
            rows.append((suite["suite"], f"{m['name']} ({m['unit']})", f"{m['value']:.{digits}f}",
                         f"[{m['ci_low']:.{digits}f}, {m['ci_high']:.{digits}f}]", str(m["n"])))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def run(args: argparse.Namespace) -> int:
    """Resolve model and data, run the suites, write results and reports."""
    from eval_suites.runner import (
        RESULTS_FILE,
        parse_suite_list,
        results_document,
        run_suites,
        write_json_atomic,
    )
    from guard.data import load_eval_data
    from guard.models.classifier import HFClassifier
    from reports import write_reports
    from training.checkpoint import read_manifest

    suites = parse_suite_list(args.suite)
    if not suites:
        raise ConfigError("--suite is empty; name at least one suite (see `guard ls suites`)")
    options = parse_dotted_options(args.set, flag="--set", example="latency.requests=50")
    for name in options:
        if name not in suites:
            raise ConfigError(f"--set names suite {name!r}, which is not in --suite {args.suite}")
    out = Path(args.out)
    _check_out(out)

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    if args.model is None:
        from training.default_model import default_model_dir, ensure_default_model

        if read_manifest(default_model_dir()) is None:
            log("training the default assistant model (first use only; cached afterwards)")
        model_dir = str(ensure_default_model(progress=not args.quiet))
    else:
        model_dir = args.model
    model = HFClassifier.from_pretrained(model_dir, device=args.device,
                                         trust_remote_code=args.trust_remote_code)
    data = load_eval_data(args.data, split=args.split, text_column=args.text_column,
                          label_column=args.label_column, allowed_labels=model.labels)
    log(f"evaluating {model_dir} on {data.source} ({len(data)} rows): {', '.join(suites)}")
    results = run_suites(model, data, suites, seed=args.seed, options=options)
    manifest = read_manifest(model_dir) if Path(model_dir).is_dir() else None
    document = results_document(results, model=model, data=data, seed=args.seed,
                                 command=["guard", *args.argv], model_manifest=manifest)
    results_path = write_json_atomic(document, out / RESULTS_FILE)
    written = write_reports(results_path, ["markdown"], out_dir=out)
    if args.json:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(_summary(document))
        print(f"\nwrote {results_path} and {', '.join(str(p) for p in written)}")
    return 0
