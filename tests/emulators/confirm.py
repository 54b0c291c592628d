"""Emulators are confirmed as a person confirms any service address: with
`modelship hosts allow ADDRESS` (the real command, through the CLI), into the test's own
config folder (MODELSHIP_HOME). No code path skips the check for tests."""

from __future__ import annotations


def confirm_hosts(*addresses: str) -> None:
    from app.cli import main

    for address in addresses:
        assert main(["hosts", "allow", address]) == 0, f"could not confirm {address}"
