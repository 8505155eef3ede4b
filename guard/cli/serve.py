"""``guard serve``: the OpenAI-compatible guarded endpoint (see :mod:`guard.serve.app`).

Every setting of :class:`guard.serve.config.ServeConfig` is a flag, generated from the field
(its description is the help), so ``--help`` lists them all.
"""

from __future__ import annotations

import argparse
from typing import Any


def _flags() -> dict[str, str]:
    from guard.serve.config import ServeConfig

    return {name: "--" + name.replace("_", "-") for name in ServeConfig.model_fields}


def _default_note(name: str, default: Any) -> str:
    from guard.cli.options import shown_default

    return f"default: {shown_default(default)}"


def add_parser(commands: Any) -> None:
    """Register the ``serve`` subcommand."""
    from guard.cli.options import add_model_flags
    from guard.serve.config import ServeConfig

    parser = commands.add_parser(
        "serve",
        help="serve an OpenAI-compatible chat and moderation API whose every output is guarded",
        description=(
            "Serve POST /v1/chat/completions (streamed with server-sent events, or whole) and "
            "POST /v1/moderations in OpenAI's wire format, GET /healthz and GET /metrics "
            "(Prometheus). Replies come from the embedded tutor (--model) or from an "
            "OpenAI-compatible --upstream (vLLM, TGI, llama.cpp's server). Every reply is "
            "checked by the output guard (the embedded harm-minilm scorer and its thresholds): "
            "a streamed reply is released segment by segment after each check; a blocked reply "
            "ends with the safe message and finish_reason content_filter. The server fails "
            "closed: a scorer error or deadline sends the safe message, never the unchecked "
            "text. Needs the serve extra: pip install 'metaverse-guard[serve]' (and the tutor "
            "extra for the embedded tutor)."
        ),
        epilog="Exit codes: 0 after a clean shutdown (Ctrl-C), 2 for a bad setting. Behind a "
               "GPU, several workers or Ray Serve: see docs/serving.md.",
    )
    add_model_flags(parser, ServeConfig, _flags(), default_note=_default_note)
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes, each with its own guard, batcher and model "
                             "(default: 1); metrics are summed across them when "
                             "PROMETHEUS_MULTIPROC_DIR names an empty folder")
    parser.add_argument("--log-level", default="info",
                        choices=("critical", "error", "warning", "info", "debug"),
                        help="uvicorn's log level (default: info)")
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`ServeConfig` the flags ask for (flags left out keep their defaults).

    Raises:
        ConfigError: For an invalid setting.
    """
    from guard.config import build_model
    from guard.serve.config import ServeConfig

    given = {name: getattr(args, name) for name in _flags() if getattr(args, name) is not None}
    return build_model(ServeConfig, given, what="serve setting")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import os

    from guard.errors import ConfigError, MissingExtraError

    config = config_from_args(args)
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    try:
        import uvicorn

        from guard.serve.app import CONFIG_ENVIRONMENT, create_app
    except ImportError as exc:
        raise MissingExtraError(exc.name or "fastapi", "serve", "guard serve") from None
    options: dict[str, Any] = {"host": config.host, "port": config.port,
                               "log_level": args.log_level, "timeout_graceful_shutdown": 10}
    app = create_app(config)  # a bad keys file fails here, before any model loads
    if args.workers == 1:
        uvicorn.run(app, **options)
        return 0
    # worker processes import the app: they read the settings from the environment
    os.environ[CONFIG_ENVIRONMENT] = config.model_dump_json()
    uvicorn.run("guard.serve.app:app_from_environment", factory=True, workers=args.workers,
                **options)
    return 0
