"""Run the emulator as a process: `python -m tests.emulators.openstack --port P`.

For tests that drive a packaged executable (which cannot share a Python process):
the emulator prints one JSON line with its URL, auth_url and (with --sshd) the SSH
port on stdout, optionally writes clouds.yaml, and serves until SIGTERM/SIGINT.
Control it over HTTP under /__emulator__/ (inject, faults, quotas, fail-servers,
listing, servers, requests, reset).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

import yaml

from .backends import NullBackend, SshdBackend
from .emulator import OpenStackEmulator
from .sshd import SshdServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.openstack")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--sshd", action="store_true", help="servers are a local sshd")
    parser.add_argument("--console-delay", type=float, default=0.5)
    parser.add_argument("--boot-delay", type=float, default=0.0)
    parser.add_argument("--clouds-yaml", type=Path, help="write clouds.yaml here")
    parser.add_argument("--region", help="region_name written into clouds.yaml")
    parser.add_argument("--compute-max-microversion", default="2.79")
    args = parser.parse_args(argv)

    sshd = None
    if args.sshd:
        sshd = SshdServer().start()
        backend = SshdBackend(sshd, args.boot_delay, args.console_delay)
    else:
        backend = NullBackend(args.boot_delay, args.console_delay)
    emulator = OpenStackEmulator(
        backend=backend, compute_max_microversion=args.compute_max_microversion
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emulator.start(args.host, args.port)
    try:
        if args.clouds_yaml:
            clouds = {
                "bwcloud": emulator.cloud_config("password", args.region),
                "bwcloud-appcred": emulator.cloud_config("application_credential", args.region),
            }
            args.clouds_yaml.write_text(yaml.safe_dump({"clouds": clouds}, sort_keys=False))
        info = {
            "url": emulator.url,
            "auth_url": emulator.auth_url,
            "regions": emulator.region_names,
            "ssh_port": sshd.port if sshd else None,
            "clouds_yaml": str(args.clouds_yaml) if args.clouds_yaml else None,
        }
        print(json.dumps(info), flush=True)
        stop.wait()
    finally:
        emulator.stop()
        if sshd is not None:
            sshd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
