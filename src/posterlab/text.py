"""Text from outside (manifests, error messages, URLs) made safe to store and to show.

A title or an error text may hold anything its source put there: a NUL byte (which
PostgreSQL refuses in a text column), terminal escape sequences (which recolour, retitle
or hyperlink a terminal), bidirectional overrides (which reorder what a person reads).
:func:`clean_text` is applied when such text enters posterlab, :func:`printable` when it
is shown on a terminal. Pure functions, no I/O.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls; tab, line breaks and the like become one space
_BREAKS = "\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029"
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_DROP = [chr(c) for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
         if chr(c) not in _BREAKS]
_TABLE = str.maketrans({**dict.fromkeys(_DROP + list(_BIDI)), **dict.fromkeys(_BREAKS, " ")})
_UNSAFE_RE = re.compile(f"[{re.escape(''.join(_DROP) + _BREAKS + _BIDI)}]")
# ECMA-48: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), other ESC sequences
_ESCAPE_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
                        r"|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
_SPACES_RE = re.compile(r" {2,}")


def has_controls(text: str) -> bool:
    """Does ``text`` hold a control character (NUL, escape, line break, ...) or a bidi
    override?

    >>> has_controls("Amélie"), has_controls("a\\x00b"), has_controls("a\\nb")
    (False, True, True)
    """
    # isprintable() (C speed) is False for every character looked for, and for a few more
    return not text.isprintable() and _UNSAFE_RE.search(text) is not None


def clean_text(text: str) -> str:
    """``text`` without control characters: line breaks and tabs become one space, NUL,
    escapes and other controls (C0, DEL, C1) and bidi overrides are removed.

    Text without any of them comes back as it is (spaces included).

    >>> clean_text("Am\\x00élie\\x1b[31m"), clean_text("two\\r\\nlines"), clean_text("a  b")
    ('Amélie[31m', 'two lines', 'a  b')
    """
    if not has_controls(text):
        return text
    return _SPACES_RE.sub(" ", text.translate(_TABLE)).strip()


def printable(text: str) -> str:
    """``text`` fit for a terminal: escape sequences (colours, OSC-8 links, titles) and
    control characters removed, line breaks as spaces.

    >>> printable("\\x1b]8;;http://evil\\x1b\\\\click\\x1b]8;;\\x1b\\\\ me\\x07")
    'click me'
    """
    if not has_controls(text):
        return text
    return _SPACES_RE.sub(" ", clean_text(_ESCAPE_RE.sub("", text))).strip()


def visible(text: str) -> str:
    """``text`` with each control character spelled as an escape (for error messages
    that must show what was refused without passing it on).

    >>> visible("a\\x00b\\x1b")
    'a\\\\x00b\\\\x1b'
    """
    return _UNSAFE_RE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)

