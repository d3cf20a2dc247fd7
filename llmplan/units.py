"""Parsing sizes people type (125M, 10B, 1.5T, 2e12) and formatting numbers for people."""

import math
import re

from llmplan.errors import LlmplanError

_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtTpP]?)\s*$")


def parse_size(text: str | float | int, what: str = "size") -> float:
    """'10B' → 1e10. Accepts K/M/B(G)/T/P suffixes, plain numbers and scientific notation."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = _SIZE.match(str(text))
        if not m:
            raise LlmplanError(
                f"cannot read {what} {text!r}: expected a number with an optional suffix K, M, B, T "
                "(e.g. 125M, 10B, 1.5T, 2e12)"
            )
        value = float(m.group(1)) * _SUFFIX[m.group(2).upper()]
    if not math.isfinite(value) or value <= 0:
        raise LlmplanError(f"{what} must be a positive number, got {text!r}")
    return value


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def fmt_sci(x: float, unit: str = "") -> str:
    """1.2e22 → '1.2×10²² FLOP'."""
    if x is None or not math.isfinite(x):
        return "–"
    if x == 0:
        return f"0 {unit}".strip()
    exp = int(math.floor(math.log10(abs(x))))
    mant = x / 10**exp
    if round(mant, 1) >= 10:
        mant, exp = mant / 10, exp + 1
    return f"{mant:.1f}×10{str(exp).translate(_SUPERSCRIPT)} {unit}".strip()


def fmt_count(x: float, unit: str = "", sig: int = 3) -> str:
    """26712.3 → '26,700 GPU-hours' (three significant figures, thousands separators)."""
    if x is None or not math.isfinite(x):
        return "–"
    if x == 0:
        return f"0 {unit}".strip()
    digits = sig - int(math.floor(math.log10(abs(x)))) - 1
    r = round(x, digits)
    s = f"{r:,.{max(digits, 0)}f}"
    if "." in s:                      # 14.0 → 14, 1.50 → 1.5: a count shows no empty decimals
        s = s.rstrip("0").rstrip(".")
    return f"{s} {unit}".strip()


def fmt_days(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    if x * 24 < 1:
        minutes = x * 24 * 60
        if minutes < 1:
            return _plural(float(f"{minutes * 60:.2g}"), "second")
        return _plural(float(f"{minutes:.2g}"), "minute")
    if x < 1:
        return _plural(float(f"{x * 24:.2g}"), "hour")
    return f"{x:,.1f} days" if x < 1000 else f"{x:,.0f} days"


def _plural(v: float, unit: str) -> str:
    """'1 minute', '2 minutes', '0.5 minutes' (English: singular for exactly one)."""
    return f"{v:g} {unit}" + ("" if v == 1 else "s")


def fmt_usd(x: float) -> str:
    """117250 → '$117k'."""
    if x is None or not math.isfinite(x):
        return "–"
    for div, suf in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            v = x / div
            return f"${v:,.3g}{suf}" if v < 1000 else f"${v:,.0f}{suf}"
    return f"${x:,.0f}"


def fmt_bytes(x: float) -> str:
    """8.12e11 → '812 GB' (decimal units)."""
    if x is None or not math.isfinite(x):
        return "–"
    for div, suf in ((1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(x) >= div:
            return f"{x / div:,.3g} {suf}"
    return f"{x:,.0f} B"


def fmt_params(x: float) -> str:
    """1e10 → '10B'."""
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suf}"
    return f"{x:.3g}"
