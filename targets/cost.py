"""What a deployment costs: one type for every kind, formatted in one place.

A kind's cost model (:class:`targets.kind.CostModel`) says what it costs while it runs
in words (the dashboard), what it costs while stopped, and where its estimate lives
(a function ``estimate(settings) -> Cost``, loaded when asked, so the catalog loads no
price table). A plan item and a target's status carry a :class:`Cost` too, not words.
Readers format one with :meth:`Cost.headline` (the Review page's rounded figures) or
:meth:`Cost.line` (a plan, a progress message, ``modelship status``), never by hand, and
amounts with :func:`money`. Plain text, no Qt, no SDK.
"""

from __future__ import annotations

from dataclasses import dataclass


def money(usd: float) -> str:
    """An amount in dollars, as precise as its size needs: "$1,234", "$7.00", "$0.056"."""
    if usd >= 100:
        return f"${usd:,.0f}"
    if usd >= 1:
        return f"${usd:.2f}"
    if not usd:
        return "$0"
    cents = f"{usd:.3f}"  # "0.056"; "0.100" is said "0.10"
    return "$" + (cents[:-1] if cents.endswith("0") else cents)


@dataclass(frozen=True)
class Cost:
    """What something costs: a deployment while it runs (the Review page), one item of a
    plan, or what a running deployment has cost so far (its status)."""

    per_hour: float | None  # None: no hourly figure (billed per request, or unknown)
    per_month: float | None
    words: str  # one sentence, plain words; a line's whole text when there are no figures
    note: str = ""  # where the figures come from ("prices of 2025-01; ...")
    detail: str = ""  # what the figures are for ("1 × ml.m5.large while it runs")
    when: str = ""  # how the monthly figure holds: "while it runs", "at most"
    up_to: bool = False  # the figure is a ceiling ("up to $0.46 per hour at 4 instances")
    spent: float | None = None  # what it has cost so far
    since: str = ""  # since when, in words: "since deploy", "in 1.5 h since 2025-01-02 10:00 UTC"

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

    def line(self) -> str:
        """One line for a plan item, a progress message or a status: "$0.056 per hour
        (1 × ml.t2.medium), about $40 per month while it runs; about $0.11 since deploy"."""
        if self.per_hour is None and self.per_month is None:
            text = self.words.rstrip(".")
        else:
            if self.per_hour is not None:
                text = f"{money(self.per_hour)} per hour"
            else:
                text = f"{money(self.per_month or 0.0)} per month"
            text = ("up to " if self.up_to else "") + text
            if self.detail:
                text += f" ({self.detail})"
            if self.per_hour is not None and self.per_month is not None:
                text += f", about {money(self.per_month)} per month"
            if self.when:
                text += f" {self.when}"
        if self.spent is not None:
            text += f"; about {money(self.spent)} {self.since}".rstrip()
        if self.note:
            text += f" ({self.note})"
        return text

    def __str__(self) -> str:
        return self.line()

    @classmethod
    def said(cls, words: str) -> Cost:
        """A cost that is only words ("free", "$0.10 per GB-month of images")."""
        return cls(None, None, words)


__all__ = ["Cost", "money"]
