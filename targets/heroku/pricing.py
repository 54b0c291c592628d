"""What a Heroku dyno costs, so the plan states it before anything is created.

A small dated table, not a live price list: Heroku publishes no pricing API. Heroku
bills dynos by the second up to the monthly price (Eco is a flat monthly plan shared by
all of an account's Eco dynos). When the table is out of date the plan says which date
it is from, and heroku.com/pricing has the current figures.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import replace

from targets.cost import Cost, money

PRICES_AS_OF = "2025-01"  # heroku.com/pricing, as published then (USD)
HOURS_PER_MONTH = 720  # Heroku prorates by the second on a 720-hour month

# dyno size (lower case) -> (USD per month at most, memory)
DYNO_PRICES: dict[str, tuple[float, str]] = {
    "eco": (5.0, "512 MB, sleeps after 30 min idle; $5/month covers 1000 hours per account"),
    "basic": (7.0, "512 MB"),
    "standard-1x": (25.0, "512 MB"),
    "standard-2x": (50.0, "1 GB"),
    "performance-m": (250.0, "2.5 GB, dedicated"),
    "performance-l": (500.0, "14 GB, dedicated"),
}

# How many server workers each size runs well (Heroku's own WEB_CONCURRENCY defaults
# for its memory sizes): more workers than memory allows ends in R14.
WORKERS = {
    "eco": 1,
    "basic": 1,
    "standard-1x": 1,
    "standard-2x": 2,
    "performance-m": 2,
    "performance-l": 4,
}


def monthly(size: str) -> float | None:
    entry = DYNO_PRICES.get(size.lower())
    return entry[0] if entry else None


def hourly(size: str) -> float | None:
    month = monthly(size)
    return None if month is None else month / HOURS_PER_MONTH


def cost(size: str) -> Cost:
    """ "$0.01 per hour (basic dyno, at most $7.00 a month), about $7.00 per month
    (prices of 2025-01)"."""
    month = monthly(size)
    note = f"prices of {PRICES_AS_OF}"
    if month is None:
        return Cost.said(
            f"dyno size {size!r} is not in ModelShip's price table ({PRICES_AS_OF}); "
            "see heroku.com/pricing"
        )
    if size.lower() == "eco":
        return Cost(None, month, "", note, detail="for the account's Eco hours")
    return Cost(
        month / HOURS_PER_MONTH,
        month,
        "",
        note,
        detail=f"{size.lower()} dyno, billed by the second up to {money(month)} a month",
    )


def cost_so_far(size: str, since_iso: str, now: _dt.datetime | None = None) -> Cost:
    """What the dyno costs and has cost since ``since_iso`` (a deploy's time)."""
    rate = hourly(size)
    plain = cost(size)
    if rate is None:
        return plain
    try:
        since = _dt.datetime.strptime(since_iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
    except ValueError:
        return plain
    now = now or _dt.datetime.now(_dt.UTC)
    hours = max(0.0, (now - since).total_seconds() / 3600)
    month = monthly(size) or 0.0
    # prorated by the second, capped at the monthly price per month
    spent = min(hours * rate, month * max(1.0, hours / HOURS_PER_MONTH))
    return replace(plain, spent=spent, since=f"so far ({hours:.1f} h since {since_iso[:16]} UTC)")


__all__ = ["DYNO_PRICES", "PRICES_AS_OF", "WORKERS", "cost", "cost_so_far", "hourly"]
