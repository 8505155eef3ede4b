from __future__ import annotations

import pytest

from guard.errors import ConfigError, UnknownNameError
from guard.registry import Registry


def test_lazy_lookup_and_suggestions() -> None:
    reg: Registry[object] = Registry("widget")
    reg.register("json-dumps", "json:dumps", summary="json")
    import json

    assert reg.get("json-dumps") is json.dumps
    with pytest.raises(UnknownNameError, match="Did you mean 'json-dumps'"):
        reg.get("json-dump")
    with pytest.raises(UnknownNameError, match="Known widgets: json-dumps"):
        reg.get("zzz")


def test_rejects_duplicates_and_bad_targets() -> None:
    reg: Registry[object] = Registry("widget")
    reg.register("a", "json:dumps", summary="")
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a", "json:loads", summary="")
    with pytest.raises(ConfigError, match="module:attr"):
        reg.register("b", "json.dumps", summary="")


def test_every_registered_suite_and_writer_imports() -> None:
    from eval_suites.registry import SUITES
    from reports.writers import WRITERS

    for registry in (SUITES, WRITERS):
        for name in registry.names():
            assert registry.get(name) is not None
