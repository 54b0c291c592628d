"""The catalog of target kinds: what the wizard lists and profiles validate against.

Each target package exports one self-describing :class:`~targets.kind.Kind` (in
``targets/<kind>/kind.py``): its settings class, where its implementation lives
(imported only when a target is used, so that ``modelship status`` of a local
deployment never loads boto3), its capabilities, how its endpoints are called, its cost
model, the long waits it announces and the wizard's optional hooks. The catalog only
lists them, one line each, in the wizard's order. The CLI, the pipeline, the wizard
and the dashboard read the kinds, never a kind's name.

Adding a target
---------------

1. **One package** ``targets/<kind>/``:

   * ``settings.py``: a :class:`targets.settings.TargetSettings` subclass (no SDK, no
     target code: the import-linter contract in ``pyproject.toml`` holds it; add the
     new modules to it);
   * ``target.py`` (and what it needs: a thin client over the SDK or HTTP API): a
     :class:`targets.base.Target` subclass with ``kind = KIND``; it implements
     ``check``, ``plan``, ``deploy``, ``destroy`` and ``status``, and overrides
     ``logs`` / ``stop`` + ``start`` exactly when its kind declares the capabilities
     ``"logs"`` / ``"stop_start"`` (``tests/unit/test_kinds.py`` checks it);
   * ``kind.py``: ``KIND = Kind(name=..., title=..., summary=..., Settings=...,
     implementation="targets.<kind>.target:<Class>", ships=..., billing=...,
     remote=..., capabilities=..., call=..., cost=CostModel(...), waits=(...),
     wizard=WizardHooks(...))``. A billing kind names its estimate
     (``"targets.<kind>.choices:estimate"``, returning a :class:`targets.cost.Cost`);
     a long wait is a :class:`app.progress.LongWait` the target announces with
     :func:`app.progress.long_wait`; the wizard hooks (a card health check, a richer
     settings panel) are optional ``"module:attribute"`` strings under ``wizards/``.

2. **One line here**: ``<kind>.KIND,`` in :data:`CATALOG`'s tuple (the order is the
   wizard's order).

3. **Its conformance harness** in ``tests/conformance/harnesses/`` (how to give it a
   profile, an emulator or a real account): the conformance suite then runs the
   protocol over it like over every other kind.

Nothing else changes: the wizard's cards, the settings page, the Review page's cost,
the deploy page's "this usually takes" line, the dashboard and the CLI read the kind
(``tests/gui/test_toy_kind.py`` proves it with a kind defined inside a test).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.nextstep import say, set_setting
from targets.docker import kind as docker
from targets.heroku import kind as heroku
from targets.kind import CostModel, Kind, WizardHooks
from targets.kubernetes import kind as kubernetes
from targets.local import kind as local
from targets.openstack import kind as openstack
from targets.sagemaker import kind as sagemaker

if TYPE_CHECKING:
    from targets.base import Target

CATALOG: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        local.KIND,
        docker.KIND,
        openstack.KIND,
        heroku.KIND,
        sagemaker.KIND,
        kubernetes.KIND,
    )
}


def get_kind(name: str) -> Kind:
    """The catalog entry ``name``; an unknown name is a UsageError naming the known ones."""
    try:
        return CATALOG[name]
    except KeyError:
        from app.errors import UsageError

        known = ", ".join(CATALOG)
        raise UsageError(
            f"Unknown target {name!r}.",
            say(f"Choose one of: {known} (", set_setting("target", "Target"), ")."),
        ) from None


def get_target(name: str) -> Target:
    """A ready target instance of kind ``name`` (its implementation imported now)."""
    return get_kind(name).load()()


__all__ = ["CATALOG", "CostModel", "Kind", "WizardHooks", "get_kind", "get_target"]
