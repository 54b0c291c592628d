"""`modelship hosts allow|list|remove URL`: service addresses confirmed on this computer.

A profile may point a target at another service than the platform's own (a Heroku
``api_url`` or ``registry``, a SageMaker ``registry`` mirror). ModelShip sends keys
there, so an address that is not the platform's documented one is used only once the
person at this computer has confirmed it here (:mod:`app.store.trust`). HTTPS only; plain
HTTP only to this computer (loopback).
"""

from __future__ import annotations

import argparse

from app.cli.commands._console import print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("allow", help="confirm a service address (ModelShip may send keys there)")
    p.add_argument("url", metavar="URL", help="e.g. https://api.example.com or host:5000")
    p = sub.add_parser("list", help="list the addresses confirmed on this computer")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p = sub.add_parser("remove", help="take back a confirmed address")
    p.add_argument("url", metavar="URL")


def run(args: argparse.Namespace) -> int:
    from app.store import trust

    if args.action == "allow":
        normal = trust.allow_host(args.url)
        print(f"Confirmed {normal} on this computer: ModelShip may send keys there.")
        return 0
    if args.action == "list":
        hosts = trust.allowed_hosts()
        if args.json:
            print_json(hosts)
        elif not hosts:
            print("No addresses confirmed; only the platforms' own are used.")
        for host in [] if args.json else hosts:
            print(host)
        return 0
    normal = trust.origin(args.url)
    if trust.remove_host(args.url):
        print(f"Removed {normal}: ModelShip will ask before using it again.")
    else:
        print(f"{normal} was not confirmed here.")
    return 0
