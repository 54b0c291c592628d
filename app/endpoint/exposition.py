"""The Prometheus text exposition format, parsed (no prometheus_client: the core keeps its
dependencies few): what both the dashboard's summary (:mod:`.metrics_read`) and its
last-hour history (:mod:`.metrics_history`) read."""

from __future__ import annotations

import re
from dataclasses import dataclass

# routes that are not predictions: health checks and the scrape itself
QUIET_ROUTES = {"/ping", "/metrics", "/health", "/healthz"}

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def parse(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition (comments and bad lines skipped)."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            continue
        name, _, labels, value = m.groups()
        try:
            number = float(value)
        except ValueError:
            continue
        found = {k: _unescape(v) for k, v in _LABEL.findall(labels or "")}
        out.append(Sample(name, found, number))
    return out


__all__ = ["QUIET_ROUTES", "Sample", "parse"]
