"""What the ``guard serve`` tests share: the scripted upstream's replies."""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextlib import AbstractContextManager

BENIGN = "The museum opens at nine. Tickets are sold at the front desk. Enjoy your visit!"
HARMFUL_TAIL = "You are a worthless idiot and everybody hates you."
HARMFUL = "Sure thing. " + HARMFUL_TAIL

#: ``serve(guard=..., backend=..., **settings)``: a context manager yielding a live URL.
ServeFactory = Callable[..., AbstractContextManager[str]]


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scripted_reply(question: str) -> str:
    """The scripted upstream's answers: harmful when asked to insult, else benign."""
    if "insult" in question:
        return HARMFUL
    if "zz" in question:  # fault markers travel into the reply
        return f"Sure, {question} is a fine topic. Have a nice day."
    if "ticket" in question:
        return f"Your ticket is {question.split()[-1]}. " + BENIGN
    return BENIGN
