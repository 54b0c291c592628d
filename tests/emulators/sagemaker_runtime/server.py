"""Background servers for tests: the emulator under uvicorn, and moto's ThreadedMotoServer.

Both bind 127.0.0.1 on a free port, run in a thread, and stop cleanly (the suite fails
a test that leaves a non-daemon thread running).
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from typing import Any

from .app import build_app
from .emulator import Emulator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmulatorServer:
    """Serves an :class:`Emulator` over HTTP from a background thread."""

    def __init__(self, emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = int(self._sock.getsockname()[1])
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> EmulatorServer:
        import uvicorn

        config = uvicorn.Config(
            build_app(self.emulator),
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        # Daemon, so that Starlette's worker threads (which inherit it) never count as
        # leftovers; stop() still shuts the loop down and joins.
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"sagemaker-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the SageMaker emulator did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        self._sock.close()

    def serve_forever(self) -> None:
        """Run in the calling thread (the ``python -m`` entry point)."""
        import uvicorn

        config = uvicorn.Config(
            build_app(self.emulator), log_level="info", lifespan="off", access_log=False
        )
        uvicorn.Server(config).run(sockets=[self._sock])


def _cloudwatch_percentiles() -> None:
    """moto answers a percentile statistic ("p99") of GetMetricData with nothing; CloudWatch
    computes it from the values put. Teach moto's ``Statistics`` the same (nearest rank over
    the single values of the period), once per process, so latency percentiles can be read
    back as from CloudWatch."""
    import math
    import re

    from moto.cloudwatch.models import Statistics

    original = Statistics.get_statistics_for_type
    if getattr(original, "modelship_percentiles", False):
        return

    def get_statistics_for_type(self: Statistics, stat: str) -> Any:
        m = re.fullmatch(r"p(\d+(?:\.\d+)?)", stat)
        if m is None:
            return original(self, stat)
        values = sorted(self.metric_single_values_list)
        if not values:
            return None
        rank = max(1, math.ceil(float(m.group(1)) / 100.0 * len(values)))
        return values[min(rank, len(values)) - 1]

    get_statistics_for_type.modelship_percentiles = True  # type: ignore[attr-defined]
    Statistics.get_statistics_for_type = get_statistics_for_type  # type: ignore[method-assign]


class MotoServer:
    """moto's ThreadedMotoServer on a free 127.0.0.1 port, with reset between tests."""

    def __init__(self, port: int | None = None) -> None:
        from moto.server import ThreadedMotoServer

        _cloudwatch_percentiles()
        self.port = port or free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        self._server.start()
        return self

    def reset(self) -> None:
        """``POST /moto-api/reset``: every backend forgets everything."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    def stop(self) -> None:
        self._server.stop()
