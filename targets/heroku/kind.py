"""The ``heroku`` kind, as the catalog lists it, and the long wait its deploy announces
(no target code: see targets.kind)."""

from __future__ import annotations

from targets.heroku.settings import HerokuSettings
from targets.kind import CostModel, Kind, LongWait, WizardHooks

RELEASE = LongWait("Heroku is starting the new release", "this usually takes under a minute")

KIND = Kind(
    name="heroku",
    title="Heroku (a platform for web apps)",
    summary="Run the model as a Heroku app with its own web address; no servers to "
    "look after. Heroku bills the dyno while it runs.",
    Settings=HerokuSettings,
    implementation="targets.heroku.target:HerokuTarget",
    ships="image",
    billing=True,
    remote=True,
    capabilities=frozenset({"logs", "stop_start"}),
    cost=CostModel(
        stopped="Nothing while stopped (no dyno runs).",
        estimate="targets.heroku.choices:estimate",
    ),
    waits=(RELEASE,),
    wizard=WizardHooks(
        card_health="wizards.health:heroku_key", form="wizards.forms.heroku:HerokuForm"
    ),
)
