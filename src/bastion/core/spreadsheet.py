"""Text bound for spreadsheets: a cell that starts like a formula is made inert.

Spreadsheet programs run a cell beginning with = + - @ (and, after a tab or carriage return,
the same) as a formula, so a username or user agent chosen by a client could run one on the
machine of the administrator who opens an export (OWASP "CSV injection"). A leading
apostrophe makes such a cell plain text to them.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
