"""Ports on this computer: shared by the targets that publish on 127.0.0.1."""

from __future__ import annotations

import socket
import urllib.parse

from app.domain import DeploymentRecord

LOOPBACK = "127.0.0.1"


def port_free(port: int, host: str = LOOPBACK) -> bool:
    """True if a server could bind ``host:port`` now (SO_REUSEADDR, like uvicorn)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def suggest_port(port: int, host: str = LOOPBACK) -> int:
    """A free port near ``port`` (else any free one)."""
    for candidate in range(port + 1, min(port + 50, 65535)):
        if port_free(candidate, host):
            return candidate
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def previous_holds(previous: DeploymentRecord | None, port: int) -> bool:
    """Does the deployment being replaced (same name, any target on this computer) answer
    on ``port``? It steps aside before the new one starts, so the port is not "in use"."""
    if previous is None or previous.state == "stopped" or not previous.url:
        return False
    url = urllib.parse.urlsplit(previous.url)
    return url.hostname in {LOOPBACK, "localhost"} and url.port == port


__all__ = ["LOOPBACK", "port_free", "previous_holds", "suggest_port"]
