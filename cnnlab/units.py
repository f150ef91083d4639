"""Sizes, counts and knob values as people read them: the one formatter of each for the app, the CLI and every
message.

MB and GB are binary here (2^20 and 2^30 bytes), as in every ``CNNLAB_*_MB`` setting, so a limit and the figure
a message gives for it read the same.
"""
from __future__ import annotations

from typing import Any

KB, MB, GB = 1 << 10, 1 << 20, 1 << 30


def format_value(x: Any) -> str:
    """A knob value as people and the CLI write it: True → 'on', 0.5 → '0.5', (4, 4) → '4,4'."""
    if isinstance(x, bool):
        return "on" if x else "off"
    if isinstance(x, float):
        return f"{x:g}"
    if isinstance(x, (tuple, list)):
        return ",".join(str(v) for v in x)
    return str(x)


def fmt_count(n: int) -> str:
    """A count in a sentence: 61,706; 132.9 million; 4.00 billion."""
    if n >= 10 ** 9:
        return f"{n / 1e9:.2f} billion"
    if n >= 10 ** 6:
        return f"{n / 1e6:.1f} million"
    return f"{n:,}"


def fmt_bytes(n: float) -> str:
    """2,048 → "2.0 KB"; 493,879,296 → "471 MB"; 1.9e9 → "1.8 GB" (one decimal below 10 of a unit)."""
    n = max(0.0, float(n))
    for unit, size in (("GB", GB), ("MB", MB), ("KB", KB)):
        if n >= size:
            v = n / size
            return f"{v:.1f} {unit}" if v < 10 else f"{v:.0f} {unit}"
    return f"{n:.0f} B"
