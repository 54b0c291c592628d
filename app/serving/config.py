"""Server settings: command-line arguments first, then ``MODELSHIP_*`` variables, then defaults.

Images are configured by environment variables (a container platform sets those, not
arguments), so every setting has one. Defaults are chosen for the CPUs the container
may really use, which is often fewer than ``os.cpu_count()`` reports.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_MODEL = "/opt/modelship/model/model.onnx"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY = 6 * 1024 * 1024  # SageMaker's payload limit
DEFAULT_CAPTURE_MAX_MB = 50.0


def default_capture_dir() -> Path:
    """Where captured requests go without MODELSHIP_CAPTURE_DIR: a folder under the
    temporary directory, which a container with a read-only root still may write."""
    return Path(tempfile.gettempdir()) / "modelship-capture"


class ConfigError(ValueError):
    """A setting has a value the server cannot use (message names the setting)."""


def available_cpus() -> int:
    """CPUs this process may use: affinity mask, narrowed by a cgroup v2/v1 CPU quota.

    ``os.cpu_count()`` reports the host's CPUs, not a container's ``--cpus`` limit;
    using it would start too many workers and threads that then fight for one core.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, int(quota + 0.5)))
    return max(1, cpus)


def _cgroup_quota() -> float | None:
    try:  # cgroup v2: "max 100000" or "200000 100000"
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:  # cgroup v1
        q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        p = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return q / p if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"{name}={value} must not be negative")
    return value


@dataclass
class ServeConfig:
    model: Path = Path(DEFAULT_MODEL)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    threads: int = 1  # onnxruntime intra-op threads per worker
    max_batch: int = 64  # rows one micro-batch may hold
    max_wait_ms: float = 2.0  # how long a batch may wait for company while another runs
    max_body_bytes: int = DEFAULT_MAX_BODY
    switch_interval_ms: float = 1.0  # Python's GIL switch interval in the workers
    inline_below_ms: float = 0.3  # a lone cheaper run skips the thread (0 = never)
    max_rows: int = 100_000  # rows one request may carry
    batching: bool = True
    graceful_timeout_s: float = 30.0
    log_level: str = "info"
    access_log: bool = False
    # hostile and slow clients (see app/serving/protocol.py)
    head_timeout_s: float = 10.0  # a request's head must arrive within this
    body_timeout_s: float = 30.0  # ... and its body within this after the head
    keep_alive_s: float = 30.0  # idle kept-alive connections close after this (uvicorn)
    max_connections: int = 1000  # open connections per worker; beyond: 503
    max_json_depth: int = 32  # nesting of JSON bodies; deeper: 400
    log_interval_s: float = 10.0  # one log line per kind of client error per interval
    # captured requests (app/serving/capture.py): off unless the rate is above 0
    capture_rate: float = 0.0
    capture_max_mb: float = DEFAULT_CAPTURE_MAX_MB
    capture_dir: Path = field(default_factory=default_capture_dir)
    # GET /capture without an API key off loopback: only where a proxy that signs callers
    # in stands in front (a Kubernetes API server's services proxy)
    capture_guarded: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def api_key(self) -> str | None:
        """Read on use and never stored on the object, so it cannot end up in a repr or log.

        ``$MODELSHIP_API_KEY_FILE`` (a read-only secret file mounted into a container, so
        the key is not in the container's environment) wins over ``$MODELSHIP_API_KEY``.
        """
        return read_api_key()


def read_api_key() -> str | None:
    """The API key from the file named by MODELSHIP_API_KEY_FILE, else MODELSHIP_API_KEY.

    A named file that cannot be read, or is empty, is an error rather than "no key":
    a server that silently dropped its key would be open to anyone.
    """
    path = os.environ.get("MODELSHIP_API_KEY_FILE", "").strip()
    if path:
        _wait_for_key_file(Path(path))
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"MODELSHIP_API_KEY_FILE={path} cannot be read "
                f"({getattr(exc, 'strerror', None) or exc})"
            ) from None
        if not key:
            raise ConfigError(f"MODELSHIP_API_KEY_FILE={path} is empty")
        if "\n" in key:
            raise ConfigError(f"MODELSHIP_API_KEY_FILE={path} holds more than one line")
        return key
    key = os.environ.get("MODELSHIP_API_KEY", "")
    return key or None


def _wait_for_key_file(path: Path) -> None:
    """With ``MODELSHIP_API_KEY_WAIT_S``, wait that long for the key file to appear.

    A container keeps its key on a tmpfs mount (never in its writable layer, its image
    or its environment): ModelShip writes it there once the container has started, so
    the server waits for it instead of starting without a key.
    """
    wait = _env_float("MODELSHIP_API_KEY_WAIT_S", 0.0)
    if wait <= 0 or path.exists():
        return
    deadline = time.monotonic() + wait
    while not path.exists():
        if time.monotonic() > deadline:
            raise ConfigError(
                f"MODELSHIP_API_KEY_FILE={path} did not appear within {wait:g} s: the API "
                "key is handed over when ModelShip starts the container (start it from "
                "ModelShip: Start on the dashboard, or `modelship start NAME`)"
            )
        time.sleep(0.05)


def from_env(
    model: str | None = None,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
) -> ServeConfig:
    """Settings from arguments (``None`` = not given) and the environment."""
    cpus = available_cpus()
    model_path = model or os.environ.get("MODELSHIP_MODEL") or DEFAULT_MODEL
    if port is None:
        raw_port = os.environ.get("PORT")  # Heroku's contract
        port = _env_int("PORT", DEFAULT_PORT, 1) if raw_port else DEFAULT_PORT
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is outside 0..65535")
    if workers is None:
        workers = _env_int("MODELSHIP_WORKERS", 0, 0) or cpus
    if workers < 1:
        raise ConfigError(f"--workers {workers} must be at least 1")
    threads = _env_int("MODELSHIP_THREADS", 0, 0) or max(1, cpus // workers)
    max_wait_ms = _env_float("MODELSHIP_MAX_WAIT_MS", 2.0)
    capture_rate = _env_float("MODELSHIP_CAPTURE_RATE", 0.0)
    if capture_rate > 1:
        raise ConfigError(f"MODELSHIP_CAPTURE_RATE={capture_rate:g} must be between 0 and 1")
    capture_max_mb = _env_float("MODELSHIP_CAPTURE_MAX_MB", DEFAULT_CAPTURE_MAX_MB)
    if capture_max_mb <= 0:
        raise ConfigError("MODELSHIP_CAPTURE_MAX_MB must be above 0")
    capture_dir = os.environ.get("MODELSHIP_CAPTURE_DIR", "").strip()
    cfg = ServeConfig(
        model=Path(model_path),
        host=host or os.environ.get("MODELSHIP_HOST") or "127.0.0.1",
        port=port,
        workers=workers,
        threads=threads,
        max_batch=_env_int("MODELSHIP_MAX_BATCH", 64, 1),
        max_wait_ms=max_wait_ms,
        max_body_bytes=_env_int("MODELSHIP_MAX_BODY_BYTES", DEFAULT_MAX_BODY, 1),
        inline_below_ms=_env_float("MODELSHIP_INLINE_BELOW_MS", 0.3),
        switch_interval_ms=max(0.05, _env_float("MODELSHIP_SWITCH_INTERVAL_MS", 1.0)),
        max_rows=_env_int("MODELSHIP_MAX_ROWS", 100_000, 1),
        batching=os.environ.get("MODELSHIP_BATCHING", "1").strip().lower()
        not in {"0", "false", "no", "off"},
        graceful_timeout_s=_env_float("MODELSHIP_GRACEFUL_TIMEOUT_S", 30.0),
        log_level=os.environ.get("MODELSHIP_LOG_LEVEL", "info").lower(),
        access_log=os.environ.get("MODELSHIP_ACCESS_LOG", "0") in {"1", "true", "yes"},
        head_timeout_s=_env_float("MODELSHIP_HEAD_TIMEOUT_S", 10.0),
        body_timeout_s=_env_float("MODELSHIP_BODY_TIMEOUT_S", 30.0),
        keep_alive_s=_env_float("MODELSHIP_KEEP_ALIVE_S", 30.0),
        max_connections=_env_int("MODELSHIP_MAX_CONNECTIONS", 1000, 1),
        max_json_depth=_env_int("MODELSHIP_MAX_JSON_DEPTH", 32, 2),
        log_interval_s=_env_float("MODELSHIP_LOG_INTERVAL_S", 10.0),
        capture_rate=capture_rate,
        capture_max_mb=capture_max_mb,
        capture_dir=Path(capture_dir) if capture_dir else default_capture_dir(),
        capture_guarded=os.environ.get("MODELSHIP_CAPTURE_GUARDED", "0").strip() == "1",
    )
    read_api_key()  # a key file that cannot be read stops the server before it starts
    return cfg


def to_env(cfg: ServeConfig) -> dict[str, str]:
    """The variables that recreate ``cfg`` in a worker process (no API key: it is inherited)."""
    return {
        "MODELSHIP_MODEL": str(cfg.model),
        "MODELSHIP_HOST": cfg.host,
        "PORT": str(cfg.port),
        "MODELSHIP_WORKERS": str(cfg.workers),
        "MODELSHIP_THREADS": str(cfg.threads),
        "MODELSHIP_MAX_BATCH": str(cfg.max_batch),
        "MODELSHIP_MAX_WAIT_MS": str(cfg.max_wait_ms),
        "MODELSHIP_MAX_BODY_BYTES": str(cfg.max_body_bytes),
        "MODELSHIP_INLINE_BELOW_MS": str(cfg.inline_below_ms),
        "MODELSHIP_MAX_ROWS": str(cfg.max_rows),
        "MODELSHIP_BATCHING": "1" if cfg.batching else "0",
        "MODELSHIP_HEAD_TIMEOUT_S": str(cfg.head_timeout_s),
        "MODELSHIP_BODY_TIMEOUT_S": str(cfg.body_timeout_s),
        "MODELSHIP_KEEP_ALIVE_S": str(cfg.keep_alive_s),
        "MODELSHIP_MAX_CONNECTIONS": str(cfg.max_connections),
        "MODELSHIP_MAX_JSON_DEPTH": str(cfg.max_json_depth),
        "MODELSHIP_CAPTURE_RATE": str(cfg.capture_rate),
        "MODELSHIP_CAPTURE_MAX_MB": str(cfg.capture_max_mb),
        "MODELSHIP_CAPTURE_DIR": str(cfg.capture_dir),
        "MODELSHIP_CAPTURE_GUARDED": "1" if cfg.capture_guarded else "0",
    }


__all__ = [
    "ConfigError",
    "ServeConfig",
    "available_cpus",
    "default_capture_dir",
    "from_env",
    "read_api_key",
    "replace",
    "to_env",
]
