"""What a deployment costs: one type for every kind, formatted in one place.

A kind's cost model (:class:`targets.kind.CostModel`) says what it costs while it runs
in words (the dashboard), what it costs while stopped, and where its estimate lives
(a function ``estimate(settings) -> Cost``, loaded when asked, so the catalog loads no
price table). The Review page and any other reader format a :class:`Cost` with
:meth:`Cost.headline`, never by hand. Plain text, no Qt, no SDK.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cost:
    """What a deployment costs while it runs, for the Review page and the plan."""

    per_hour: float | None  # None: no hourly figure (billed per request, or unknown)
    per_month: float | None
    words: str  # one sentence, plain words
    note: str = ""  # where the figures come from ("prices of 2025-01; ...")
    detail: str = ""  # what the figures are for ("1 × ml.m5.large while it runs")

    @property
    def figures(self) -> list[str]:
        """The figures in words: "$0.12 per hour", "about $83 per month"."""
        out = []
        if self.per_hour is not None:
            out.append(f"${self.per_hour:.2f} per hour")
        if self.per_month is not None:
            out.append(f"about ${self.per_month:,.0f} per month")
        return out

    def headline(self) -> str:
        """ "$0.12 per hour — about $83 per month", or "Billed per use" without figures."""
        return " — ".join(self.figures) or "Billed per use"

    def explanation(self) -> str:
        """The sentence under the headline: what the figures are for, or the words."""
        return self.detail if self.figures and self.detail else self.words


__all__ = ["Cost"]
