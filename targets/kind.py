"""What a kind of target says about itself: the one :class:`Kind` each package exports.

A target package ``targets/<kind>/`` declares its kind in ``targets/<kind>/kind.py``
(``KIND = Kind(...)``) and the catalog lists it. Everything the CLI, the wizard and the
dashboard know about a kind without loading it comes from there: its settings class,
where its implementation lives (imported on first use), what it can do, how its
endpoints are called, what it costs, the long waits it announces, and the wizard's
optional hooks (named as ``"module:attribute"`` strings, so that neither this module
nor ``targets/`` imports Qt or the wizard).

Nothing here imports an SDK or target code (an import-linter contract holds it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from app.domain import Endpoint, Ships
from app.progress import LongWait
from targets.calling import CallSnippets, CallStyle, call_snippets
from targets.cost import Cost
from targets.settings import TargetSettings

if TYPE_CHECKING:
    from targets.base import Target

# What a kind can do beyond the protocol's required methods. "logs" and "stop_start" are
# checked against what the implementation overrides (tests/unit/test_kinds.py).
Capability = Literal["logs", "stop_start", "autoscaling"]


def load_object(path: str) -> Any:
    """``"package.module:attribute"`` imported now."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class CostModel:
    """What a kind costs, as far as the dashboard and the Review page need to know.

    ``running``: what a running deployment costs when its status says nothing ("" = it
    bills: "See your provider's bill."); ``stopped``: what it costs while stopped, if it
    bills nothing then; ``estimate``: ``"module:function"``, ``function(settings) ->
    Cost``, loaded when asked (the Review page's cost line).
    """

    running: str = ""
    stopped: str = ""
    estimate: str | None = None


@dataclass(frozen=True)
class WizardHooks:
    """The wizard's optional extras for a kind, as ``"module:attribute"`` strings that
    only the wizard imports (they may need Qt).

    ``card_health``: ``function() -> wizards.health.Health``, the quick local check
    shown on the kind's card (worker thread); ``form``: a panel class added to the
    generated settings form (see ``wizards/forms``); ``icon``: the card's icon, a name
    from the wizard's resources.
    """

    card_health: str | None = None
    form: str | None = None
    icon: str = "cloud"


@dataclass(frozen=True)
class Kind:
    """One kind of target, as far as it can be known without loading it."""

    name: str
    title: str
    summary: str  # one line: when to choose it
    Settings: type[TargetSettings]
    implementation: str  # "package.module:Class", imported lazily
    ships: Ships = "files"
    billing: bool = False  # costs money while it runs: the plan states the cost
    remote: bool = False  # runs somewhere else than this computer
    capabilities: frozenset[str] = frozenset()  # see Capability
    call: CallStyle = "http"  # how its endpoints are called: see targets.calling
    cost: CostModel = field(default_factory=CostModel)
    waits: tuple[LongWait, ...] = ()  # the long waits its deploy announces
    wizard: WizardHooks = field(default_factory=WizardHooks)

    @property
    def can_stop(self) -> bool:
        """Stop and Start apart from Delete (the target implements ``stop``/``start``)."""
        return "stop_start" in self.capabilities

    def call_snippets(
        self,
        endpoint: Endpoint,
        settings: TargetSettings | None = None,
        rows: list[Any] | None = None,
    ) -> CallSnippets:
        """How to call ``endpoint`` (curl / AWS CLI, Python), naming only the endpoint's
        own key entry; no SDK is loaded and no secret read."""
        return call_snippets(self.call, endpoint, settings, rows)

    def estimate(self, settings: TargetSettings) -> Cost | None:
        """What a deployment with ``settings`` costs while it runs; None when the kind
        bills nothing or has no estimate."""
        if not self.billing or self.cost.estimate is None:
            return None
        return load_object(self.cost.estimate)(settings)  # type: ignore[no-any-return]

    def running_cost(self, status_cost: str = "", stopped: bool = False) -> str:
        """The running cost in words: the status's own figure if it has one, else the
        kind's standing words; while stopped, what it costs then (if it says)."""
        words = (
            status_cost
            or self.cost.running
            or ("See your provider's bill." if self.billing else "")
        )
        if stopped and self.cost.stopped:
            return f"{self.cost.stopped} Before: {words}"
        return words

    def load(self) -> type[Target]:
        return load_object(self.implementation)  # type: ignore[no-any-return]

    @property
    def module(self) -> str:
        return self.implementation.partition(":")[0]


__all__ = ["Capability", "CostModel", "Kind", "LongWait", "WizardHooks", "load_object"]
