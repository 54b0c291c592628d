"""Live health of the target cards, before the analyst commits to one (after Docker
Desktop and Anaconda Navigator): "Docker is not running", with what to do.

Only quick local checks run here (the Docker Engine answers a ping, or not); cloud
targets are checked on their settings page, where their credentials are chosen.
Worker thread only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Health:
    ok: bool
    text: str  # one line, plain words
    fix: str = ""  # what to do, plain words


def card_health(kinds: list[str]) -> dict[str, Health]:
    from wizards.words import plain

    out: dict[str, Health] = {}
    if "docker" in kinds:
        from app.errors import ModelShipError
        from app.image import connect

        try:
            client = connect(timeout=5)
        except ModelShipError as exc:
            out["docker"] = Health(False, plain(exc.message), plain(exc.hint or ""))
        else:
            client.close()
            out["docker"] = Health(True, "Docker is running.")
    return out
