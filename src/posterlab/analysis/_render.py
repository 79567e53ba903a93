"""A tiny document model rendered twice: self-contained HTML and Markdown.

A report is a list of blocks, so the HTML and Markdown versions cannot drift apart:
``("h2", text)``, ``("p", text)``, ``("ul", [text, ...])``, ``("table", DataFrame)`` and
``("figure", (file name, caption))``. Text is plain (Unicode, no markup); each renderer
escapes it for its own format.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from posterlab.text import clean_text

__all__ = ["Block", "cell", "to_html", "to_markdown"]

Block = tuple[str, Any]

_STYLE = (
    "body{font-family:sans-serif;max-width:62em;margin:auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:0.5em 0}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "img{max-width:100%}figure{margin:1em 0}"
)


def cell(value: Any) -> str:
    """A table cell as text: floats to 3 significant digits, missing as ``n/a``.

    Examples
    --------
    >>> cell(0.123456), cell(float("nan")), cell(12), cell(None)
    ('0.123', 'n/a', '12', 'n/a')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _cells(table: pd.DataFrame) -> pd.DataFrame:
    return table.apply(lambda column: column.map(cell)).astype(str) if len(table) else table


def to_html(title: str, blocks: Sequence[Block], images: Mapping[str, bytes]) -> str:
    """One HTML page; every figure's PNG embedded as a base64 ``data:`` URI."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for kind, content in blocks:
        if kind in ("h2", "h3", "p"):
            body.append(f"<{kind}>{html.escape(content)}</{kind}>")
        elif kind == "ul":
            items = "".join(f"<li>{html.escape(item)}</li>" for item in content)
            body.append(f"<ul>{items}</ul>")
        elif kind == "table":
            body.append(_cells(content).to_html(index=False, escape=True, na_rep="n/a"))
        elif kind == "figure":
            name, caption = content
            data = base64.b64encode(images[name]).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


_MD_INLINE = re.compile(r"([\\`*_\[\]|~]|(?<=\])\()")  # no link, image, emphasis, code
_MD_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_MD_BLOCK_START = re.compile(r"^(?:([+=#>-])|(\d+)([.)]))")


def _md_escape(text: str, *, block_start: bool = True) -> str:
    """Plain text as Markdown that renders as that text: no link, image, emphasis, code,
    raw HTML or table break, and on one line (line breaks become spaces).

    ``block_start``: the text starts a block (a paragraph, an item), where ``-``, ``+``,
    ``=`` or ``1.`` would make a list or a heading of it.

    >>> print(_md_escape("<img src=x onerror=alert(1)> [a](http://x) *b* 1. c|d\\n- e"))
    &lt;img src=x onerror=alert(1)&gt; \\[a\\]\\(http://x) \\*b\\* 1. c\\|d - e
    >>> print(_md_escape("-1 is 1984. too"), _md_escape("1984. A year"))
    \\-1 is 1984. too 1984\\. A year
    """
    text = _MD_INLINE.sub(r"\\\1", clean_text(text).translate(_MD_HTML))
    if block_start:
        text = _MD_BLOCK_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", text)
    return text


def _md_table(table: pd.DataFrame) -> str:
    if table.columns.empty:
        return "(empty table)"
    cells = _cells(table)
    header = "| " + " | ".join(_md_escape(str(c)) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(_md_escape(v, block_start=False) for v in row) + " |"
            for row in cells.to_numpy()]
    return "\n".join([header, rule, *rows])


def to_markdown(title: str, blocks: Sequence[Block]) -> str:
    """Markdown; figures refer to the PNG files by name, beside the ``.md`` file.

    Examples
    --------
    >>> print(to_markdown("T", [("p", "a_b"), ("figure", ("x.png", "X"))]))
    # T
    <BLANKLINE>
    a\\_b
    <BLANKLINE>
    ![X](x.png)
    <BLANKLINE>
    """
    out = [f"# {_md_escape(title)}"]
    for kind, content in blocks:
        if kind == "h2":
            out.append(f"## {_md_escape(content)}")
        elif kind == "h3":
            out.append(f"### {_md_escape(content)}")
        elif kind == "p":
            out.append(_md_escape(content))
        elif kind == "ul":
            out.append("\n".join(f"- {_md_escape(item)}" for item in content))
        elif kind == "table":
            out.append(_md_table(content))
        elif kind == "figure":
            name, caption = content
            out.append(f"![{_md_escape(caption)}]({name})")
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    return "\n\n".join(out) + "\n"
