"""A self-contained HTML report: sections of plain words, figures embedded, tables linked.

:func:`write_report` turns a list of :class:`Section` (a title, paragraphs, figures as PNG
files embedded as base64 data, tables shown as HTML and linked to the CSV written beside the
page) into one page that opens in any browser without the folder's other files. The demo
(:mod:`disagree.demo`) composes the sections; nothing here knows about the survey.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from disagree._io import write_atomic

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1020px;
margin:2em auto;padding:0 1.2em;color:#1d1d1f;line-height:1.5}
h1{font-size:1.7em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
p.lead{color:#555;margin-top:0}figure{margin:1em 0}img{max-width:100%;height:auto;
border:1px solid #eee}figcaption{font-size:.85em;color:#555}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border-bottom:1px solid #e4e4e4;padding:.25em .6em;text-align:right}
th{background:#f6f6f6}td:first-child,th:first-child{text-align:left}
.note{background:#fff8e5;border-left:4px solid #e0b000;padding:.5em .9em}
.files{font-size:.85em;color:#555}code{background:#f3f3f3;padding:0 .25em}
"""


@dataclass
class Section:
    """One part of the report.

    Attributes
    ----------
    title : str
    paragraphs : list of str
        Plain text (escaped); a paragraph starting with ``"NOTE: "`` is shown as a note.
    figures : list of (path, caption)
        PNG files, embedded.
    tables : list of (name, DataFrame, caption)
        Shown (at most ``max_rows`` rows) and linked to ``name`` (a CSV beside the page).
    """

    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame, str]] = field(default_factory=list)


def write_report(path: str | os.PathLike[str], title: str, lead: str,
                 sections: Sequence[Section], max_rows: int = 30) -> Path:
    """Write the sections as one self-contained HTML page, atomically.

    Parameters
    ----------
    path : path
        The page (``report.html``).
    title, lead : str
        Heading and the line under it.
    sections : sequence of Section
    max_rows : int
        Rows shown per table (the CSV has them all).

    Returns
    -------
    pathlib.Path
    """
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p class='lead'>{html.escape(lead)}</p>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for text in section.paragraphs:
            if text.startswith("NOTE: "):
                parts.append(f"<p class='note'>{html.escape(text[6:])}</p>")
            else:
                parts.append(f"<p>{html.escape(text)}</p>")
        for png, caption in section.figures:
            data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(caption)}' "
                         f"src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        for name, frame, caption in section.tables:
            shown = frame.head(max_rows)
            more = (f" (first {max_rows} of {len(frame)} rows)" if len(frame) > max_rows
                    else "")
            parts.append(f"<p class='files'>{html.escape(caption)}{more}; all rows in "
                         f"<a href='{html.escape(name)}'>{html.escape(name)}</a></p>")
            parts.append(shown.to_html(index=False, border=0, formatters=_formats(shown),
                                       na_rep=""))
    parts.append("</body></html>")
    text = "\n".join(parts)
    return write_atomic(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _formats(frame: pd.DataFrame) -> dict[str, Callable[[float], str]]:
    """One number format a float column: 1 decimal where any value reaches 10, else 3."""
    out = {}
    for col in frame.select_dtypes("floating").columns:
        decimals = 1 if frame[col].abs().max() >= 10 else 3
        out[col] = lambda v, d=decimals: "" if pd.isna(v) else f"{v:,.{d}f}"
    return out
