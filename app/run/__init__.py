"""The pipeline: a profile -> a running, smoke-tested endpoint, or nothing at all.

Split by concern, each module readable on its own:

* :mod:`app.run.events` -- what a run tells the person watching (Event, progress);
* :mod:`app.run.lock` -- one command at a time per deployment name;
* :mod:`app.run.attempt` -- one attempt's journal, steps and undo;
* :mod:`app.run.steps` -- intake, convert, build, push, smoke;
* :mod:`app.run.resources` -- removing a resource by its owner;
* :mod:`app.run.replace` -- replacing a running deployment of the same name;
* :mod:`app.run.history` -- the record a successful run writes, pruning;
* :mod:`app.run.preflight` -- checks, plan and steps before a deploy;
* :mod:`app.run.client` -- calling a deployment by name (or why not now);
* :mod:`app.run.deploy`, :mod:`app.run.rollback`, :mod:`app.run.teardown`.

The CLI and the wizard call only what this package exports.
"""

from __future__ import annotations

from app.run.client import deployment_client
from app.run.deploy import run_deploy
from app.run.events import STEP_TITLES, STEPS, Event, EventProgress, OnEvent, ProgressEvents
from app.run.lock import deployment_lock
from app.run.preflight import manifests, plan, preflight, steps_for
from app.run.replace import InputChange, InputsChangeRefused, input_change
from app.run.rollback import run_rollback
from app.run.steps import conversion_key, convert_for_profile, prove, versions_dir
from app.run.teardown import recover_all, teardown

__all__ = [
    "STEPS",
    "STEP_TITLES",
    "Event",
    "EventProgress",
    "InputChange",
    "InputsChangeRefused",
    "OnEvent",
    "ProgressEvents",
    "conversion_key",
    "convert_for_profile",
    "deployment_client",
    "deployment_lock",
    "input_change",
    "manifests",
    "plan",
    "preflight",
    "prove",
    "recover_all",
    "run_deploy",
    "run_rollback",
    "steps_for",
    "teardown",
    "versions_dir",
]
