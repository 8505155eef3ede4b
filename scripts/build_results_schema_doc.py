"""Write the field reference of docs/results-schema.md from the models in guard/results.py.

The tables between the ``BEGIN GENERATED`` and ``END GENERATED`` markers are generated: one per
model, each field with its JSON type and the meaning its docstring gives. ``--check`` exits 1
when the file is out of date (a test runs it), so the document cannot drift from the types.

Usage::

    python scripts/build_results_schema_doc.py          # rewrite the tables
    python scripts/build_results_schema_doc.py --check  # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from guard import results

DOC = Path(__file__).resolve().parents[1] / "docs" / "results-schema.md"
BEGIN = "<!-- BEGIN GENERATED: python scripts/build_results_schema_doc.py -->"
END = "<!-- END GENERATED -->"
MODELS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("Top level (`ResultsDocument`)", results.ResultsDocument),
    ("`model` (`ModelInfo`)", results.ModelInfo),
    ("`data` (`DataInfo`)", results.DataInfo),
    ("`policy` (`PolicyInfo`)", results.PolicyInfo),
    ("Each entry of `suites` (`SuiteResult`)", results.SuiteResult),
    ("Each entry of a suite's `metrics` (`MetricValue`)", results.MetricValue),
    ("A suite's `provenance` (`Provenance`)", results.Provenance),
    ("`gate` (`GateResult`)", results.GateResult),
    ("Each entry of the gate's `checks` (`GateCheck`)", results.GateCheck),
)


def _json_type(annotation: Any) -> str:
    """The JSON type of a field annotation, in words."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = [_json_type(a) for a in args if a is not type(None)]
        return " or ".join(kinds) + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return " \\| ".join(f"`{value}`" for value in args)
    if origin in (list, tuple):
        return f"list of {_json_type(args[0])}" if args else "list"
    if origin is dict or annotation is dict:
        return "object"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return f"object (`{annotation.__name__}`)"
    return {str: "string", int: "int", float: "number", bool: "bool"}.get(annotation, "any")


def _attributes(model: type[BaseModel]) -> dict[str, str]:
    """``Attributes:`` of a Google-style docstring: name -> one-paragraph meaning."""
    doc = inspect.getdoc(model) or ""
    section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    meanings: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            current = match.group(1)
            meanings[current] = match.group(2).strip()
        elif current and line.startswith("        "):
            meanings[current] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return meanings


def reference() -> str:
    """The generated tables."""
    parts = [BEGIN, ""]
    for title, model in MODELS:
        meanings = _attributes(model)
        hints = typing.get_type_hints(model)
        parts += [f"### {title}", "", "| field | type | meaning |", "|---|---|---|"]
        for name, field in model.model_fields.items():
            if name not in meanings:
                raise SystemExit(f"{model.__name__}.{name} has no Attributes entry")
            key = field.alias or name
            meaning = meanings[name].replace("|", "\\|")
            parts.append(f"| `{key}` | {_json_type(hints[name])} | {meaning} |")
        parts.append("")
    parts.append(END)
    return "\n".join(parts)


def main() -> int:
    """Rewrite or check the generated part of docs/results-schema.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args()
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"{DOC}: the generated-section markers are missing", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    updated = head + reference() + tail
    if args.check:
        if updated != text:
            print(f"{DOC} is out of date: run python scripts/build_results_schema_doc.py",
                  file=sys.stderr)
            return 1
        return 0
    DOC.write_text(updated, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
