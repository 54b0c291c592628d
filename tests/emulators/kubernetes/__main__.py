"""Run the emulator as a process: ``python -m tests.emulators.kubernetes --kubeconfig PATH``.

Why: the packaged executable's tests drive ModelShip out of process and need a cluster
at a fixed address. Writes the kubeconfig (HTTPS, bearer token), prints one JSON line
(api_url, kubeconfig, namespace); on SIGTERM or Ctrl-C removes every container and
pulled image it made. The registry is the caller's (pass its pull Secret in manifests).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .emulator import KubernetesEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.kubernetes")
    parser.add_argument("--port", type=int, default=0, help="API server port (0: any free)")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write it")
    parser.add_argument("--namespace", default="modelship")
    parser.add_argument("--kserve", action="store_true", help="serve serving.kserve.io/v1beta1")
    parser.add_argument(
        "--deny",
        action="append",
        default=[],
        metavar="VERB:GROUP:RESOURCE",
        help="refuse a verb (RBAC), e.g. create:autoscaling:horizontalpodautoscalers",
    )
    args = parser.parse_args(argv)
    emulator = KubernetesEmulator(kserve=args.kserve, namespace=args.namespace, port=args.port)
    for rule in args.deny:
        verb, group, resource = rule.split(":")
        emulator.deny(verb, resource, group)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    emulator.start()
    try:
        emulator.write_kubeconfig(args.kubeconfig)
        print(
            json.dumps(
                {
                    "api_url": emulator.api_url,
                    "kubeconfig": str(args.kubeconfig),
                    "namespace": emulator.namespace,
                }
            ),
            flush=True,
        )
        while not done.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
