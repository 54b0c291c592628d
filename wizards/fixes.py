"""One-click fixes for preflight problems, built on the core's public API.

The core says *what* is wrong (``targets.base.Problem`` with ``kind`` and ``setting``);
the wizard adds what a person can click: "Use free port 8081" for a port in use, and
names the deployment of their own that holds the port, if one does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.records import deployment_on_port  # the core names the holder, for the CLI too


@dataclass
class Fix:
    setting: str  # the settings field it changes (a key of the form)
    text: str  # the button's words
    value: Any = None  # the value it puts into the field (None: just go to the field)


def explain(problems: list[Any], profile: Any) -> tuple[list[Any], list[Fix]]:
    """The problems in the wizard's words, and the fixes to offer. Worker thread only
    (it binds sockets and reads the deployment records)."""
    from targets.base import Problem
    from targets.net import suggest_port

    settings = profile.target.settings
    out: list[Any] = []
    fixes: list[Fix] = []
    for p in problems:
        if p.setting == "port" and hasattr(settings, "port"):
            port = settings.port
            host = getattr(settings, "bind_host", "127.0.0.1")
            if host in {"0.0.0.0", "::"}:
                host = "127.0.0.1"
            free = suggest_port(port, host)
            holder = deployment_on_port(port, exclude=profile.name)
            if holder is not None:
                p = Problem(
                    f"Port {port} is used by your deployment “{holder.name}”.",
                    f"Use another port (port {free} is free), or tear down “{holder.name}” "
                    "on the Start page first.",
                    kind=p.kind,
                    setting=p.setting,
                )
            fixes.append(Fix("port", f"Use free port {free}", free))
        elif p.setting and hasattr(settings, p.setting):
            title = type(settings).model_fields[p.setting].title or p.setting
            fixes.append(Fix(p.setting, f"Go to “{title}”"))
        out.append(p)
    return out, fixes
