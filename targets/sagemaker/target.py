"""The ``sagemaker`` target: an AWS SageMaker endpoint (real-time or serverless), autoscaled.

Over 600 lines: one class whose methods follow SageMaker's resources in order; the
AWS client, ECR, prices, preflight and resources are modules of their own already.

What it makes, in order, each journaled before it is created and tagged with the
deployment's name (``modelship.deployment``):

* ECR repository (:mod:`targets.sagemaker.ecr`, in the pipeline's push step), unless it
  exists; the image is pushed for the instance's CPU (Graviton types: linux/arm64);
* an execution role, unless ``role_arn`` names one: trusted by
  ``sagemaker.amazonaws.com`` only, allowed to pull from ECR and write its logs, nothing
  else;
* per version: a SageMaker model (the pushed image by digest) and an endpoint config (a
  real-time variant, or ``ServerlessConfig``); kept for rollback until pruned;
* the endpoint: created once; a redeploy or rollback is an ``UpdateEndpoint`` to the
  version's config (blue/green, all at once, SageMaker rolls back by itself when the new
  fleet fails), journaled as an ``endpoint_update`` whose undo points the endpoint back;
* autoscaling when the fewest and most instances differ: a scalable target and a
  target-tracking policy on ``SageMakerVariantInvocationsPerInstance``;
* with ``capture_rate`` above 0: an S3 bucket for SageMaker's Data Capture, and a
  ``DataCaptureConfig`` in each endpoint config (:mod:`.capture`); teardown removes
  the captured objects and the bucket.

The plan states what that costs per hour from a dated table (:mod:`.prices`); ``status``
repeats it with the time since deploy; ``teardown`` removes all of it (and the
repository and role only if ModelShip created them), so nothing is left billing.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any, ClassVar

from app.domain import PIPELINE_KINDS, DeploymentRecord, Endpoint, Platform, Resource
from app.errors import CredentialError, TargetError
from app.nextstep import run_command, say, stop_billing
from app.progress import Progress, long_wait
from app.waiting import wait_until
from targets.base import DeployContext, PlanItem, Problem, Target, TargetStatus, UsageHistory
from targets.cost import Cost, money
from targets.kind import Kind
from targets.sagemaker import prices, resources
from targets.sagemaker.capture import (
    bucket_name,
    data_capture_config,
    ensure_bucket,
    pull_lines,
    sampling_percentage,
)
from targets.sagemaker.capture import destination as capture_destination
from targets.sagemaker.client import AWS, aws_errors, error_code, is_not_found, tags
from targets.sagemaker.kind import ENDPOINT_START, KIND
from targets.sagemaker.preflight import (
    HEALTH_WINDOW_S,
    MAX_PAYLOAD,
    initial_count,
    role_problems,
    scaling,
    setting_problems,
)
from targets.sagemaker.resources import (
    BUCKET,
    CONFIG,
    ENDPOINT,
    MODEL,
    POLICY,
    REPOSITORY,
    ROLE,
    SCALABLE,
    TEARDOWN_ORDER,
    UPDATE,
    VARIANT,
    aws_name,
    describe_endpoint,
    endpoint_name,
    repository_name,
    role_name,
    role_policy,
    trust_policy,
)
from targets.sagemaker.settings import SageMakerSettings

if TYPE_CHECKING:
    from app.endpoint.client import EndpointClient
    from app.store.profile import Profile
    from targets.sagemaker.ecr import ECRRegistry


def _aws(settings: SageMakerSettings) -> AWS:
    return AWS(settings.aws_profile, settings.region)


class SageMakerTarget(Target):
    kind: ClassVar[Kind] = KIND
    # UpdateEndpoint swaps the fleet blue/green: the old one answers until the new one is
    # healthy, and stays when the new one fails.
    replacement: ClassVar = "platform"

    # ---- what the pipeline derives its steps from ------------------------------------
    def platforms(self, profile: Profile) -> tuple[Platform, ...]:
        s: SageMakerSettings = profile.target.settings
        if s.mode == "realtime" and prices.is_graviton(s.instance_type):
            return ("linux/arm64",)
        return ("linux/amd64",)  # serverless runs x86_64 only

    def registry(self, profile: Profile) -> ECRRegistry:
        from targets.sagemaker.ecr import ECRRegistry

        s: SageMakerSettings = profile.target.settings
        return ECRRegistry(_aws(s), repository_name(profile), profile.name, host=s.registry)

    def prepare(self, ctx: DeployContext) -> None:
        """The push step, before anything is created: state what the endpoint will cost,
        then create the ECR repository if it is missing (journaled first)."""
        s: SageMakerSettings = ctx.settings
        if s.mode == "serverless":
            cost = prices.serverless_cost(s.memory_mb)
        else:
            cost = prices.realtime_cost(s.instance_type, initial_count(s))
        ctx.progress.update(
            None,
            say(
                f"SageMaker bills the {s.mode} endpoint while it exists: {cost.line()} "
                f"({prices.table_note(s.region)}); ",
                stop_billing(ctx.name),
            ),
        )
        registry = self.registry(ctx.profile)
        registry.ensure_repository(ctx.journal, ctx.progress)

    # ---- before --------------------------------------------------------------------
    def check(self, profile: Profile, previous: DeploymentRecord | None) -> list[Problem]:
        s: SageMakerSettings = profile.target.settings
        hosts = s.address_errors()  # first, before any traffic: where the ECR login goes
        if hosts:
            return [Problem(e.message, e.hint or "", "setting", e.setting) for e in hosts]
        problems = setting_problems(profile)
        aws = _aws(s)
        try:
            aws.account()
        except (TargetError, CredentialError) as exc:
            kind = "credential" if exc.exit_code == 6 else "environment"
            who = Problem(exc.message, exc.hint or "", kind=kind, setting="aws_profile")
            return [who, *problems]  # first: a missing credential decides the exit code
        try:
            regions = aws.regions("sagemaker")
        except Exception:  # botocore's own data; never expected to fail
            regions = []
        if regions and s.region not in regions:
            problems.append(
                Problem(
                    f"SageMaker is not offered in region {s.region!r}.",
                    f"Choose one of: {', '.join(sorted(regions)[:12])}, ...",
                    kind="setting",
                    setting="region",
                )
            )
        problems += role_problems(aws, s)
        return problems

    def plan(self, profile: Profile, previous: DeploymentRecord | None) -> list[PlanItem]:
        s: SageMakerSettings = profile.target.settings
        ep = endpoint_name(profile.name)
        ours = previous is not None and previous.target == self.name
        items = [
            PlanItem(
                "create or reuse",
                "ECR repository",
                repository_name(profile),
                f"in {s.region}; images stored there",
                Cost.said(f"{money(prices.ECR_USD_PER_GB_MONTH)} per GB-month of images"),
            )
        ]
        if s.role_arn:
            items.append(PlanItem("use", "execution role", s.role_arn))
        else:
            items.append(
                PlanItem(
                    "create or reuse",
                    "IAM role",
                    role_name(profile.name),
                    "trusted by SageMaker only; may pull the image and write logs",
                    Cost.said("free"),
                )
            )
        if s.capture_rate > 0:
            items.append(
                PlanItem(
                    "create or reuse",
                    "S3 bucket",
                    f"modelship-{profile.name}-<hash>/capture",
                    f"SageMaker Data Capture keeps {sampling_percentage(s.capture_rate)} % of "
                    "the requests and answers there (no headers, no key); "
                    + (
                        f"the role {s.role_arn} must allow s3:PutObject there; "
                        if s.role_arn
                        else ""
                    )
                    + "teardown removes them",
                    Cost.said(
                        f"{money(prices.S3_USD_PER_GB_MONTH)} per GB-month of captured data "
                        f"stored, plus {money(prices.S3_USD_PER_1000_PUTS)} per 1,000 objects "
                        "written"
                    ),
                )
            )
        items.append(PlanItem("create", "SageMaker model", f"{ep}-v*", "the pushed image"))
        if s.mode == "serverless":
            cost = prices.serverless_cost(s.memory_mb)
            detail = f"serverless, {s.memory_mb} MB, up to {s.max_concurrency} concurrent calls"
        else:
            count = initial_count(s)
            cost = prices.realtime_cost(s.instance_type, count)
            detail = f"real-time, {count} × {s.instance_type}"
        items.append(PlanItem("create", "endpoint config", f"{ep}-v*", detail))
        items.append(
            PlanItem(
                "update" if ours else "create",
                "endpoint",
                ep,
                say(
                    "blue/green update, keeps answering; " if ours else "",
                    f"{prices.table_note(s.region)}; ",
                    stop_billing(profile.name),
                ),
                cost,
            )
        )
        if scaling(s):
            most = prices.hourly(s.instance_type, s.max_instances)
            items.append(
                PlanItem(
                    "create",
                    "autoscaling",
                    f"endpoint/{ep}/variant/{VARIANT}",
                    f"{s.min_instances}-{s.max_instances} instances, one more per "
                    f"{s.target_invocations_per_instance} calls per instance per minute",
                    Cost(most, None, "", when=f"at {s.max_instances} instances", up_to=True)
                    if most is not None
                    else None,
                )
            )
        return items

    def warnings(self, profile: Profile) -> list[str]:
        s: SageMakerSettings = profile.target.settings
        if s.mode == "realtime":
            return [
                say(
                    f"A real-time SageMaker endpoint bills every hour it runs "
                    f"({prices.realtime_cost(s.instance_type, initial_count(s)).line()}), "
                    "used or not. ",
                    run_command("teardown", profile.name, verb="Run"),
                    " when you no longer need it.",
                )
            ]
        return []

    # ---- deploy --------------------------------------------------------------------
    def deploy(self, ctx: DeployContext) -> Endpoint:
        s: SageMakerSettings = ctx.settings
        if ctx.pushed is None:
            raise TargetError(
                "There is no pushed image to run on SageMaker.", "Deploy again (it pushes)."
            )
        aws = _aws(s)
        base = {"region": s.region, "aws_profile": s.aws_profile}
        previous_live = self._previous_live(ctx)
        live: list[Resource] = []
        for r in ctx.journal.resources():  # the repository, if the push step created it
            if r.kind == REPOSITORY:
                live.append(r)
        live += [r for r in previous_live if r.kind == REPOSITORY and r.key not in _keys(live)]

        ctx.cancel.raise_if_cancelled()
        bucket = self._capture_bucket(ctx, aws, s, base, previous_live)
        if bucket is not None:
            live.append(bucket)
        live += [r for r in previous_live if r.kind == BUCKET and r.key not in _keys(live)]
        capture = bucket.id if bucket is not None else None
        kept = next((r for r in live if r.kind == BUCKET), None)  # capture since turned off
        ctx.cancel.raise_if_cancelled()
        role_arn, role = self._role(ctx, aws, s, base, previous_live, capture)
        if role is not None:
            live.append(role)
        ctx.cancel.raise_if_cancelled()
        model, config = self._model_and_config(ctx, aws, s, base, role_arn, capture)
        ctx.cancel.raise_if_cancelled()
        ep = endpoint_name(ctx.name)
        endpoint_resource = self._endpoint(ctx, aws, s, base, ep, config)
        live.append(endpoint_resource)
        ctx.cancel.raise_if_cancelled()
        live += self._autoscaling(ctx, aws, s, base, ep, previous_live)

        runtime = aws.client("sagemaker-runtime")
        url = f"{runtime.meta.endpoint_url.rstrip('/')}/endpoints/{ep}/invocations"
        return Endpoint(
            url=url,
            target=self.name,
            resources=live,
            auth="sigv4",
            data={
                "endpoint_name": ep,
                "region": s.region,
                "aws_profile": s.aws_profile,
                "mode": s.mode,
                "instance_type": s.instance_type if s.mode == "realtime" else None,
                "instance_count": initial_count(s) if s.mode == "realtime" else None,
                "memory_mb": s.memory_mb if s.mode == "serverless" else None,
                "model": model,
                "config": config,
                "deployed_at": time.time(),
                # where SageMaker's Data Capture writes (None: capture off)
                "capture_uri": capture_destination(kept.id) if kept is not None else None,
            },
        )

    def _previous_live(self, ctx: DeployContext) -> list[Resource]:
        prev = ctx.previous
        if prev is None or prev.target != self.name:
            return []
        return prev.resources()

    # -- role --
    def _role(
        self,
        ctx: DeployContext,
        aws: AWS,
        s: SageMakerSettings,
        base: dict[str, Any],
        previous_live: list[Resource],
        capture: str | None = None,
    ) -> tuple[str, Resource | None]:
        """The execution role's ARN, and the role resource when ModelShip made it.

        ``capture``: the capture bucket the role must be allowed to write into."""
        if s.role_arn:
            return s.role_arn, None
        name = role_name(ctx.name)
        iam = aws.client("iam")
        mine = next((r for r in previous_live if r.kind == ROLE and r.id == name), None)
        try:
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        except Exception as exc:
            if not is_not_found(exc):
                with aws.errors(f"looking up IAM role {name}"):
                    raise exc
        else:
            ctx.progress.update(None, f"Using the execution role {name}")
            if mine is not None:  # ours: its policy follows the settings (capture on/off)
                with aws.errors(f"updating the policy of IAM role {name}"):
                    iam.put_role_policy(
                        RoleName=name,
                        PolicyName="modelship-endpoint",
                        PolicyDocument=json.dumps(
                            role_policy(
                                s.region, aws.account(), repository_name(ctx.profile), capture
                            )
                        ),
                    )
            return arn, mine  # ours when an earlier version of this deployment made it
        resource = Resource(ROLE, name, name=f"IAM role {name}", data={**base, "created": True})
        ctx.journal.record(resource)
        ctx.progress.update(None, f"Creating the execution role {name} (ECR pull, logs only)")
        account = aws.account()
        with aws.errors(f"creating IAM role {name} (iam:CreateRole)"):
            arn = iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust_policy(account)),
                Description=f"SageMaker execution role of ModelShip deployment {ctx.name}",
                Tags=tags(ctx.name),
            )["Role"]["Arn"]
            resource.data["arn"] = arn
            ctx.journal.update(resource)
            iam.put_role_policy(
                RoleName=name,
                PolicyName="modelship-endpoint",
                PolicyDocument=json.dumps(
                    role_policy(s.region, account, repository_name(ctx.profile), capture)
                ),
            )
        return arn, resource

    # -- model and endpoint config (per version) --
    def _model_and_config(
        self,
        ctx: DeployContext,
        aws: AWS,
        s: SageMakerSettings,
        base: dict[str, Any],
        role_arn: str,
        capture: str | None = None,
    ) -> tuple[str, str]:
        """The version's model and endpoint config; ``capture`` is the bucket SageMaker's
        Data Capture writes into (None: no DataCaptureConfig)."""
        sm = aws.client("sagemaker")
        reuse = self._version_resources(ctx)
        if reuse is not None:  # a rollback: that version's model and config still exist
            return reuse
        stem = aws_name(f"{endpoint_name(ctx.name)}", 50)
        suffix = f"v{ctx.version}-{secrets.token_hex(2)}"
        model = f"{stem}-{suffix}"
        config = f"{stem}-{suffix}"
        version_data = {**base, "version": ctx.version}
        environment = {
            # the serving runtime refuses what SageMaker would refuse, with its own words
            "MODELSHIP_MAX_BODY_BYTES": str(MAX_PAYLOAD[s.mode]),
        }
        m = Resource(MODEL, model, name=f"SageMaker model {model}", data=dict(version_data))
        ctx.journal.record(m)
        ctx.progress.update(None, f"Creating the SageMaker model {model}")

        def create_model() -> bool:
            try:
                sm.create_model(
                    ModelName=model,
                    PrimaryContainer={
                        "Image": ctx.pushed.ref,  # type: ignore[union-attr]
                        "Environment": environment,
                    },
                    ExecutionRoleArn=role_arn,
                    Tags=tags(ctx.name),
                )
            except Exception as exc:
                # A new role takes a few seconds to be usable everywhere in IAM.
                if error_code(exc) == "ValidationException" and "assume" in str(exc).lower():
                    return False
                with aws.errors(f"creating SageMaker model {model}"):
                    raise exc
            return True

        wait_until(
            create_model,
            lambda ok: ok,
            timeout=60,
            cancel=ctx.cancel,
            progress=ctx.progress,
            what="the new execution role to be usable",
            interval=2.0,
        )
        if s.mode == "serverless":
            variant: dict[str, Any] = {
                "VariantName": VARIANT,
                "ModelName": model,
                "ServerlessConfig": {
                    "MemorySizeInMB": s.memory_mb,
                    "MaxConcurrency": s.max_concurrency,
                },
            }
        else:
            variant = {
                "VariantName": VARIANT,
                "ModelName": model,
                "InitialInstanceCount": initial_count(s),
                "InstanceType": s.instance_type,
                "InitialVariantWeight": 1.0,
                "ContainerStartupHealthCheckTimeoutInSeconds": HEALTH_WINDOW_S,
            }
        c = Resource(CONFIG, config, name=f"endpoint config {config}", data=dict(version_data))
        ctx.journal.record(c)
        ctx.progress.update(None, f"Creating the endpoint config {config}")
        extra: dict[str, Any] = {}
        if capture is not None:
            extra["DataCaptureConfig"] = data_capture_config(s.capture_rate, capture)
        with aws.errors(f"creating endpoint config {config}"):
            sm.create_endpoint_config(
                EndpointConfigName=config,
                ProductionVariants=[variant],
                Tags=tags(ctx.name),
                **extra,
            )
        return model, config

    # -- the capture bucket --
    def _capture_bucket(
        self,
        ctx: DeployContext,
        aws: AWS,
        s: SageMakerSettings,
        base: dict[str, Any],
        previous_live: list[Resource],
    ) -> Resource | None:
        """The bucket SageMaker's Data Capture writes into, when capture is on; an
        earlier version's bucket is kept (its captured requests stay until teardown)."""
        if s.capture_rate <= 0:
            return None
        name = bucket_name(aws.account(), s.region, ctx.name)
        previous = next((r for r in previous_live if r.kind == BUCKET and r.id == name), None)
        return ensure_bucket(aws, name, ctx.name, ctx.journal, ctx.progress, previous, base)

    def _version_resources(self, ctx: DeployContext) -> tuple[str, str] | None:
        """A recorded version's model and config, when both still exist (rollback).

        Only while SageMaker still serves this deployment: after another target replaced
        it, the role those models name was removed with it, so new ones are made."""
        if ctx.previous is None or ctx.previous.target != self.name:
            return None
        version = ctx.previous.version(ctx.version)
        if version is None or (version.target or ctx.previous.target) != self.name:
            return None
        found = {r.kind: r for r in version.resource_objects() if r.kind in {MODEL, CONFIG}}
        if set(found) != {MODEL, CONFIG}:
            return None
        sm = resources.aws_of(found[MODEL]).client("sagemaker")
        try:
            sm.describe_model(ModelName=found[MODEL].id)
            sm.describe_endpoint_config(EndpointConfigName=found[CONFIG].id)
        except Exception as exc:
            if is_not_found(exc):
                return None
            with aws_errors("looking up the earlier version's model"):
                raise exc
        ctx.progress.update(None, f"Reusing version {ctx.version}'s model {found[MODEL].id}")
        return found[MODEL].id, found[CONFIG].id

    # -- the endpoint --
    def _endpoint(
        self,
        ctx: DeployContext,
        aws: AWS,
        s: SageMakerSettings,
        base: dict[str, Any],
        ep: str,
        config: str,
    ) -> Resource:
        sm = aws.client("sagemaker")
        resource = Resource(ENDPOINT, ep, name=f"endpoint {ep}", data=dict(base))
        current = describe_endpoint(aws, ep)
        if current is None:
            ctx.journal.record(resource)
            long_wait(
                ctx.progress, ENDPOINT_START, f"Creating the endpoint {ep} (a few minutes on AWS)"
            )
            with aws.errors(f"creating endpoint {ep}"):
                sm.create_endpoint(EndpointName=ep, EndpointConfigName=config, Tags=tags(ctx.name))
            self._wait(ctx, aws, ep, config, update=False)
            return resource
        if current["EndpointStatus"] in {"Creating", "Updating", "SystemUpdating"}:
            ctx.progress.update(None, f"Waiting for the endpoint {ep} to finish its last change")
            current = self._wait(ctx, aws, ep, None, update=True)
        if current["EndpointStatus"] != "InService":
            raise TargetError(
                f"The endpoint {ep} is {current['EndpointStatus']} and cannot be updated"
                + (f": {current.get('FailureReason')}" if current.get("FailureReason") else "."),
                say("Remove it with ", run_command("teardown", ctx.name), " and deploy again."),
            )
        previous_config = current["EndpointConfigName"]
        update = Resource(
            UPDATE,
            f"{ep}:{config}",
            name=f"update of endpoint {ep} to {config}",
            data={**base, "endpoint": ep, "config": config, "previous_config": previous_config},
        )
        ctx.journal.record(update)
        long_wait(
            ctx.progress,
            ENDPOINT_START,
            f"Updating the endpoint {ep} (blue/green: it keeps answering)",
        )
        self._scale_guard(ctx, aws, s, ep, current)
        kwargs: dict[str, Any] = {"EndpointName": ep, "EndpointConfigName": config}
        if s.mode == "realtime":
            kwargs["DeploymentConfig"] = {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "ALL_AT_ONCE",
                        "WaitIntervalInSeconds": 0,
                    },
                    "TerminationWaitInSeconds": 0,
                }
            }
        with aws.errors(f"updating endpoint {ep}"):
            sm.update_endpoint(**kwargs)
        self._wait(ctx, aws, ep, config, update=True)
        return resource

    def _scale_guard(
        self, ctx: DeployContext, aws: AWS, s: SageMakerSettings, ep: str, current: dict
    ) -> None:
        """SageMaker refuses an update that changes the instance type of an autoscaled
        variant: deregister first (the scaling step registers it again)."""
        variants = current.get("ProductionVariants") or []
        types = {v.get("CurrentInstanceType") or v.get("InstanceType") for v in variants}
        if s.mode == "realtime" and (types - {None}) <= {s.instance_type}:
            return
        aas = aws.client("application-autoscaling")
        resource_id = f"endpoint/{ep}/variant/{VARIANT}"
        try:
            aas.deregister_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=resource_id,
                ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            )
        except Exception as exc:
            if not is_not_found(exc):
                with aws.errors(f"removing autoscaling from {ep} before the update"):
                    raise exc

    def _wait(
        self, ctx: DeployContext, aws: AWS, ep: str, config: str | None, *, update: bool
    ) -> dict[str, Any]:
        """Wait for InService (on ``config``); SageMaker's FailureReason on failure."""
        started = time.time()

        def probe() -> dict[str, Any]:
            found = describe_endpoint(aws, ep)
            if found is None:
                return {"EndpointStatus": "Gone"}
            return found

        def ready(d: dict[str, Any]) -> bool:
            return d["EndpointStatus"] == "InService" and (
                config is None or d.get("EndpointConfigName") == config
            )

        def failed(d: dict[str, Any]) -> str | None:
            status = d["EndpointStatus"]
            reason = d.get("FailureReason") or "no reason given"
            if status == "Gone":
                return "the endpoint disappeared (deleted by someone else?)"
            if status in {"Failed", "OutOfService"}:
                return f"SageMaker says {status}: {reason}"
            if (
                update
                and config
                and status == "InService"
                and d.get("EndpointConfigName") != config
            ):
                # blue/green rolled back by itself: the old version still answers
                changed = _timestamp(d.get("LastModifiedTime")) >= started - 5
                if d.get("FailureReason") or changed:
                    return f"the update was rolled back by SageMaker: {reason}"
            return None

        return wait_until(
            probe,
            ready,
            failed,
            timeout=ctx.settings.start_timeout,
            cancel=ctx.cancel,
            progress=ctx.progress,
            what=f"endpoint {ep} to be InService",
            describe=lambda d: f"Endpoint {ep}: {d['EndpointStatus']}",
            hint=say(
                "It may still finish: check ",
                run_command("status", ctx.name),
                "; raise start_timeout for a slow model.",
            ),
            fail_hint="See SageMaker's reason above and the endpoint's logs in CloudWatch "
            f"(/aws/sagemaker/Endpoints/{ep}); fix the cause and deploy again.",
            interval=1.0,
            max_interval=15.0,
            details=lambda: self._log_tail(aws, ep),
        )

    # -- autoscaling --
    def _autoscaling(
        self,
        ctx: DeployContext,
        aws: AWS,
        s: SageMakerSettings,
        base: dict[str, Any],
        ep: str,
        previous_live: list[Resource],
    ) -> list[Resource]:
        had = [r for r in previous_live if r.kind in {SCALABLE, POLICY}]
        if not scaling(s):
            for r in reversed(had):  # scaling turned off: remove the old setup
                self.destroy(r, ctx.progress)
            return []
        aas = aws.client("application-autoscaling")
        resource_id = f"endpoint/{ep}/variant/{VARIANT}"
        policy = f"modelship-{ctx.name}-invocations"
        known = _keys(had)
        target = Resource(
            SCALABLE, resource_id, name=f"scalable target {resource_id}", data=dict(base)
        )
        if target.key not in known:
            ctx.journal.record(target)
        ctx.progress.update(
            None, f"Autoscaling {s.min_instances}-{s.max_instances} instances on {ep}"
        )
        with aws.errors(f"registering {ep} with Application Auto Scaling"):
            aas.register_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=resource_id,
                ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                MinCapacity=s.min_instances,
                MaxCapacity=s.max_instances,
            )
        ctx.cancel.raise_if_cancelled()
        p = Resource(
            POLICY,
            policy,
            name=f"scaling policy {policy}",
            data={**base, "resource_id": resource_id},
        )
        if p.key not in known:
            ctx.journal.record(p)
        with aws.errors(f"putting the scaling policy on {ep}"):
            aas.put_scaling_policy(
                PolicyName=policy,
                ServiceNamespace="sagemaker",
                ResourceId=resource_id,
                ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": float(s.target_invocations_per_instance),
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                    },
                    "ScaleInCooldown": 300,
                    "ScaleOutCooldown": 60,
                },
            )
        return [target, p]

    # ---- calling it ----------------------------------------------------------------
    def client(self, endpoint: Endpoint, profile: Profile | None = None) -> EndpointClient:
        from targets.sagemaker.runtime import SageMakerClient

        data = endpoint.data
        if profile is not None and profile.target.kind == self.name:
            s: SageMakerSettings = profile.target.settings
            aws = AWS(s.aws_profile, s.region)
        else:
            aws = AWS(data.get("aws_profile"), str(data.get("region")))
        return SageMakerClient(endpoint.url, str(data["endpoint_name"]), aws)

    def captured(
        self, record: DeploymentRecord, since: float | None = None, client: Any = None
    ) -> bytes:
        """The deployment's captured requests from SageMaker's Data Capture in S3, as
        ModelShip capture lines (JSON Lines; empty when capture is off)."""
        return pull_lines(record, since)

    # ---- removing ------------------------------------------------------------------
    def destroy(self, resource: Resource, progress: Progress) -> bool:
        return resources.destroy(resource, progress)

    def teardown(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Everything of the deployment here, dependants first: scaling, the endpoint,
        configs, models, then the role and repository if ModelShip created them."""
        resources = [r for r in record.all_resources(self.name) if r.kind not in PIPELINE_KINDS]
        order = {k: i for i, k in enumerate(TEARDOWN_ORDER)}
        resources.sort(key=lambda r: order.get(r.kind, len(order)))
        removed = []
        for resource in resources:
            if resource.kind == UPDATE:
                continue  # the endpoint is gone: nothing to point back
            if self.destroy(resource, progress):
                removed.append(resource.describe())
        return removed

    # ---- later ---------------------------------------------------------------------
    def status(self, record: DeploymentRecord) -> TargetStatus:
        endpoint = record.endpoint_obj()
        if endpoint is None or "endpoint_name" not in endpoint.data:
            return TargetStatus(False, "no SageMaker endpoint recorded")
        data = endpoint.data
        ep = str(data["endpoint_name"])
        aws = AWS(data.get("aws_profile"), str(data.get("region")))
        try:
            d = describe_endpoint(aws, ep)
        except (TargetError, CredentialError) as exc:
            return TargetStatus(False, exc.message)
        if d is None:
            return TargetStatus(
                False, f"endpoint {ep} is gone", cost=Cost.said("nothing (no endpoint)")
            )
        status = d["EndpointStatus"]
        since = float(data.get("deployed_at") or time.time())
        hours = max(0.0, (time.time() - since) / 3600)
        detail = f"endpoint {ep} {status} in {data.get('region')}, deployed {_ago(hours)} ago"
        if d.get("FailureReason"):
            detail += f" ({d['FailureReason']})"
        variants = d.get("ProductionVariants") or []
        count = sum(int(v.get("CurrentInstanceCount") or 0) for v in variants)
        count = count or int(data.get("instance_count") or 0)
        if data.get("mode") == "serverless":
            cost = prices.serverless_cost(int(data.get("memory_mb") or 2048))
        else:
            cost = prices.realtime_cost(str(data.get("instance_type")), count, hours)
        return TargetStatus(
            status in {"InService", "Updating", "SystemUpdating"},
            detail,
            {
                "endpoint": ep,
                "status": status,
                "config": d.get("EndpointConfigName"),
                "instances": count,
                "hours": round(hours, 2),
            },
            cost=cost,
        )

    def logs(self, record: DeploymentRecord, lines: int = 100) -> str:
        endpoint = record.endpoint_obj()
        if endpoint is None or "endpoint_name" not in endpoint.data:
            return ""
        data = endpoint.data
        aws = AWS(data.get("aws_profile"), str(data.get("region")))
        text = self._log_tail(aws, str(data["endpoint_name"]), lines)
        if text:
            return text
        group = f"/aws/sagemaker/Endpoints/{data['endpoint_name']}"
        return (
            f"No log lines in CloudWatch yet for {data['endpoint_name']}. Look in the AWS "
            f"console: CloudWatch > Log groups > {group} (region {data.get('region')})."
        )

    def usage_history(self, record: DeploymentRecord) -> UsageHistory | None:
        """The last hour from CloudWatch's ``AWS/SageMaker`` metrics (the server's
        ``/metrics`` does not reach the container on SageMaker). Raises the SDK's error
        when CloudWatch cannot be read (the dashboard says so and goes on)."""
        from targets.sagemaker import usage

        endpoint = record.endpoint_obj()
        if endpoint is None or "endpoint_name" not in endpoint.data:
            return UsageHistory({}, usage.NOTE)
        data = endpoint.data
        aws = AWS(data.get("aws_profile"), str(data.get("region")))
        ep = str(data["endpoint_name"])
        with aws.errors("reading the endpoint's metrics (cloudwatch:GetMetricData)"):
            series = usage.cached_series(
                (str(aws.profile), aws.region, ep, VARIANT),
                lambda: usage.read_series(
                    aws.client("cloudwatch", read_timeout=15), ep, VARIANT, time.time()
                ),
            )
        return UsageHistory(series, usage.NOTE)

    def _log_tail(self, aws: AWS, ep: str, lines: int = 30) -> str | None:
        """The endpoint's last CloudWatch log lines, or None when there are none to read."""
        try:
            logs = aws.client("logs", read_timeout=15)
            events = logs.filter_log_events(
                logGroupName=f"/aws/sagemaker/Endpoints/{ep}", limit=lines
            ).get("events", [])
        except Exception:
            return None
        return "\n".join(e.get("message", "").rstrip() for e in events[-lines:]) or None


def _keys(resources: list[Resource]) -> set[tuple[str, str]]:
    return {r.key for r in resources}


def _timestamp(value: Any) -> float:
    if value is None:
        return 0.0
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _ago(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


__all__ = ["SageMakerTarget", "endpoint_name", "role_name"]
