"""`import guard` stays cheap and side-effect free."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, os, sys
before = dict(os.environ)
import guard, guard.registry, guard.errors, guard.data, guard.models
heavy = [m for m in ("torch", "transformers", "datasets", "textattack", "opacus", "flair",
                    "fastapi", "starlette", "uvicorn", "prometheus_client", "httpx", "ray")
         if m in sys.modules]
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
import logging
print(json.dumps({"heavy": heavy, "env_changed": changed,
                  "root_handlers": len(logging.getLogger().handlers)}))
"""


def test_import_guard_is_light_and_changes_nothing() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True)
    report = json.loads(out.stdout)
    assert report == {"heavy": [], "env_changed": [], "root_handlers": 0}


def test_version_is_exposed() -> None:
    import guard

    assert guard.__version__ != "0.0.0+unknown"


def test_the_attacks_wing_does_not_import_training() -> None:
    # training imports attacks (adversarial mode); the reverse would make an import cycle
    probe = ("import sys, attacks, attacks.textattack_env, attacks.records; "
             "attacks.textattack_env.nltk_data_dir(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'training'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
    from attacks.textattack_env import nltk_data_dir
    from guard.cache import cache_root

    assert nltk_data_dir() == cache_root() / "nltk_data"


def test_only_guard_serve_imports_the_web_framework() -> None:
    # the CLI registers `guard serve` (its flags come from ServeConfig) without the framework
    probe = ("import sys, guard.cli, guard.serve.config; guard.cli.build_parser(); "
             "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'prometheus_client') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
