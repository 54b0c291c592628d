"""Figures as an analyst reads them (0.0213, 15.1, "less than 0.000001"), never 1.2e-07.

The one formatter for the proof's and the smoke test's differences, used by the core's
sentences and the wizard's tables alike.
"""

from __future__ import annotations

import math

# differences below this are float rounding: said so, not as 8.78e-08
TINY = 1e-6


def plain_number(value: float, tiny: float | None = None) -> str:
    """Three significant digits, no exponent; below ``tiny``, "less than 0.000001"."""
    if value == 0:
        return "0"
    if tiny is not None and abs(value) < tiny:
        return f"less than {tiny:.{max(0, -math.floor(math.log10(tiny)))}f}"
    if not math.isfinite(value):
        return str(value)
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    if digits > 20:  # a tolerance typed as 1e-25: said as typed
        return f"{value:g}"
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def at_most(value: float) -> str:
    """'differ by at most 0.0213' / 'differ by less than 0.000001' for a largest
    difference."""
    if abs(value) < TINY:
        return f"differ by less than {plain_number(TINY)}"
    return f"differ by at most {plain_number(value)}"
