"""Before a deploy: what would fail (with fixes), what will be done, which steps run."""

from __future__ import annotations

from app.domain import DeploymentRecord
from app.errors import CredentialError, TargetError
from app.nextstep import run_command, say, strip_end
from app.run.events import STEPS
from app.store.profile import Profile
from app.store.records import deployment_on_port, find_record
from targets.base import PlanItem, Problem, Target
from targets.catalog import get_target


def steps_for(profile: Profile) -> list[str]:
    """The steps a deploy of this profile runs (build/push only where the target needs)."""
    target = get_target(profile.target.kind)
    skip = set()
    if target.ships != "image":
        skip |= {"build", "push"}
    elif target.registry(profile) is None:
        skip.add("push")
    return [s for s in STEPS if s not in skip]


def preflight(profile: Profile) -> list[Problem]:
    """What would make a deploy of ``profile`` fail, before anything is created."""
    problems = get_target(profile.target.kind).check(profile, find_record(profile.name))
    return name_port_holder(problems, profile)


def name_port_holder(problems: list[Problem], profile: Profile) -> list[Problem]:
    """A taken port held by another deployment of the person's own: say which one, and
    that tearing it down (or another port) frees it."""
    port = getattr(profile.target.settings, "port", None)
    if not isinstance(port, int) or not any(p.setting == "port" for p in problems):
        return problems
    holder = deployment_on_port(port, exclude=profile.name)
    if holder is None:
        return problems
    return [
        Problem(
            f"Port {port} is used by your deployment {holder.name!r}.",
            say(
                strip_end(p.fix, "."),
                f"; or tear down {holder.name!r} first (",
                run_command("teardown", holder.name, quote=""),
                ").",
            ),
            kind=p.kind,
            setting=p.setting,
        )
        if p.setting == "port"
        else p
        for p in problems
    ]


def plan(profile: Profile) -> list[PlanItem]:
    """What a deploy would do, in words (shown before deploying), cost included."""
    target = get_target(profile.target.kind)
    previous = find_record(profile.name)
    items = [PlanItem("convert", "model", str(profile.model.path), "to ONNX, with a proof")]
    if target.ships == "image":
        platform = target.platforms(profile)[0]
        items.append(
            PlanItem(
                "build",
                "image",
                f"modelship/{profile.name}",
                f"{platform}, from {profile.image.base_image}",
            )
        )
        registry = target.registry(profile)
        if registry is not None:
            items.append(PlanItem("push", "image", registry.repository, registry.describe()))
    items.extend(target.plan(profile, previous))
    items.append(PlanItem("run", "smoke test", profile.name, "predictions vs the proof"))
    return items


def manifests(profile: Profile) -> str | None:
    """The exact objects a deploy of ``profile`` would create, as one document (the
    target's ``manifests`` hook: YAML, secrets redacted), or None for targets without."""
    return get_target(profile.target.kind).manifests(profile, find_record(profile.name))


def check_ready(target: Target, profile: Profile, previous: DeploymentRecord | None) -> None:
    """Raise the first preflight problem (a missing credential as CredentialError)."""
    problems = name_port_holder(target.check(profile, previous), profile)
    if not problems:
        return
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    error = CredentialError if first.kind == "credential" else TargetError
    raise error(
        f"Not ready to deploy to {target.title}: {first.message}{more}",
        first.fix,
        details="\n".join(str(p) for p in problems),
    )
