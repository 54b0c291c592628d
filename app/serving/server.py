"""Start the server: one process, or N worker processes sharing the port.

Workers each bind the port with SO_REUSEPORT, so the kernel spreads connections
evenly over them (a shared accept queue lets one busy worker grab most of them), and
a worker only starts listening once its model is loaded and warmed up: a connection
never lands on a worker that cannot answer. The parent checks that the port is free
first, so a second server on the same port fails loudly instead of sharing it.

SIGTERM/SIGINT: stop accepting, answer every request already accepted, exit 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import replace

from app.serving.config import ServeConfig

log = logging.getLogger("modelship.serving")
EXIT_CANNOT_SERVE = 3


class StartError(Exception):
    """The server cannot start (port taken, model unloadable); message says why."""


def _bind(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says so; with proto 0 every response paid a 40 ms delayed-ACK stall.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartError(
            f"Cannot listen on {host}:{port} ({exc.strerror or exc}). Another program may use "
            "this port: choose another with --port."
        ) from None
    sock.set_inheritable(True)
    return sock


def check_port_free(host: str, port: int) -> int:
    """Bind once without SO_REUSEPORT: fails if anything holds the port. Returns the port."""
    sock = _bind(host, port, reuse_port=False)
    try:
        return sock.getsockname()[1]
    finally:
        sock.close()


def _serve_one(config: ServeConfig, sock: socket.socket | None, app: object) -> int:
    """Run uvicorn in this process until SIGTERM/SIGINT; 0 after a graceful stop."""
    import uvicorn

    from app.serving import logs
    from app.serving.app import ServingApp
    from app.serving.protocol import GuardedHttpToolsProtocol

    assert isinstance(app, ServingApp)
    logs.install(config.log_interval_s)
    max_connections = _fit_connections(config.max_connections)
    # The model runs in a thread; when it finishes, it needs the GIL back from a busy event
    # loop, which by default lets go only every 5 ms. A shorter interval bounds that wait.
    sys.setswitchinterval(config.switch_interval_ms / 1000)
    uv = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        # httptools, with read deadlines, a head size limit and a connection cap that
        # uvicorn lacks (see app/serving/protocol.py for each gap)
        http=GuardedHttpToolsProtocol,
        loop="asyncio",
        lifespan="on",
        access_log=config.access_log,
        log_level=config.log_level,
        timeout_graceful_shutdown=int(config.graceful_timeout_s) or None,
        # uvicorn's own: idle kept-alive connections (it also arms this after a response)
        timeout_keep_alive=max(1, int(config.keep_alive_s)),
        server_header=False,
        backlog=2048,
        **_tls_files(),
    )
    uv.modelship = replace(config, max_connections=max_connections)  # type: ignore[attr-defined]
    server = uvicorn.Server(uv)
    # uvicorn re-raises the signal it caught after shutting down; with the default
    # handler that kills the process with -15. A no-op handler makes a clean exit 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    if sock is None:
        server.run()
    else:
        server.run(sockets=[sock])
    if not server.started:
        return EXIT_CANNOT_SERVE
    return 0


def _tls_files() -> dict[str, str]:
    """HTTPS when MODELSHIP_TLS_CERT_FILE and MODELSHIP_TLS_KEY_FILE name a certificate
    and its key (a VM's self-made pair, mounted read-only): the endpoint's client pins
    the certificate by its SHA-256 fingerprint. Both or neither."""
    cert = os.environ.get("MODELSHIP_TLS_CERT_FILE", "").strip()
    key = os.environ.get("MODELSHIP_TLS_KEY_FILE", "").strip()
    if bool(cert) != bool(key):
        raise StartError("Set both MODELSHIP_TLS_CERT_FILE and MODELSHIP_TLS_KEY_FILE, or neither.")
    return {"ssl_certfile": cert, "ssl_keyfile": key} if cert else {}


def _fit_connections(wanted: int) -> int:
    """Raise the open-file limit to its hard limit and keep the cap below it.

    When accept() runs out of file descriptors, asyncio logs a traceback per attempt
    and stops accepting for a second, /ping included; the cap must bite first.
    """
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_NOFILE
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft == resource.RLIM_INFINITY:
        return wanted
    room = max(16, int(soft) - 64)  # the model, the log, the listening socket, ...
    if wanted > room:
        log.info(
            "MODELSHIP_MAX_CONNECTIONS=%d is above what the open-file limit allows; using %d",
            wanted,
            room,
        )
    return min(wanted, room)


def _load(config: ServeConfig) -> object:
    from app.serving.app import ServingApp
    from app.serving.model import ModelLoadError

    app = ServingApp(config)
    try:
        app.load()
    except ModelLoadError as exc:
        raise StartError(str(exc)) from None
    return app


def serve(config: ServeConfig, *, announce: bool = True) -> int:
    """Serve until told to stop. Returns the process exit code."""
    if config.port == 0 and config.workers > 1:
        raise StartError("--port 0 (any free port) works with one worker only.")
    _tls_files()  # half a TLS setting stops the start here, with its message
    check_port_free(config.host, config.port)
    if config.workers == 1 or not hasattr(os, "fork"):
        app = _load(config)
        sock = _bind(config.host, config.port, reuse_port=False)
        if announce:
            _announce(config, sock)
        return _serve_one(config, sock, app)
    return _supervise(config, announce)


def _how_to_stop() -> str:
    """How to stop, for a person at a terminal (``modelship serve``): Ctrl+C. A server
    that ModelShip started writes a log file, read in the dashboard: no keys to press."""
    try:
        interactive = sys.stderr.isatty()
    except (AttributeError, ValueError):
        interactive = False
    return "; Ctrl+C to stop." if interactive else "."


def _announce(config: ServeConfig, sock: socket.socket) -> None:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"Serving {config.model.name} on {'https' if _tls_files() else 'http'}://{shown}:{port} "
        f"({config.workers} worker(s) x {config.threads} thread(s)){_how_to_stop()}",
        file=sys.stderr,
        flush=True,
    )


def _child(config: ServeConfig) -> int:
    """A forked worker: load the model, then listen on the shared port."""
    try:
        app = _load(config)
        sock = _bind(config.host, config.port, reuse_port=True)
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_CANNOT_SERVE
    return _serve_one(config, sock, app)


def _supervise(config: ServeConfig, announce: bool) -> int:
    """Fork the workers (before onnxruntime starts any thread), restart ones that crash."""
    stopping = False
    children: dict[int, float] = {}

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # child
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 1
            try:
                code = _child(config)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = time.monotonic()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(config.workers):
        spawn()
    if announce:
        print(
            f"Serving {config.model.name} on http://{config.host}:{config.port} "
            f"({config.workers} workers x {config.threads} thread(s)){_how_to_stop()}",
            file=sys.stderr,
            flush=True,
        )
    exit_code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        born = children.pop(pid, None)
        if born is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        if code == EXIT_CANNOT_SERVE:
            exit_code = EXIT_CANNOT_SERVE
            stop()
        elif time.monotonic() - born < 5:  # crashing at start: do not loop forever
            log.error("worker %s exited with %s right after starting; stopping", pid, code)
            exit_code = EXIT_CANNOT_SERVE
            stop()
        else:
            log.error("worker %s exited with %s; starting a new one", pid, code)
            spawn()
    return exit_code
