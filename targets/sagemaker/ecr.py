"""ECR as the SageMaker target's registry: create the repository, log in, push, remove.

A :class:`~targets.registry.V2Registry` whose host is the account's ECR registry
(``ACCOUNT.dkr.ecr.REGION.amazonaws.com``, looked up only when a push or plan needs
it) or the ``registry`` setting (a mirror; the tests' local registry), which gets the
ECR password only when it is an ECR address of the region or was confirmed on this
computer (``modelship hosts allow``; :func:`check_registry`). The password is
a fresh ``get_authorization_token`` per push, passed to the Engine with the push and
never written to ``~/.docker/config.json``. The repository is created in
:meth:`ECRRegistry.ensure_repository` (the target's ``prepare``, in the push step),
journaled first and marked as ModelShip's, so a failed run's undo and teardown delete
it, and a repository the user made is never deleted.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from typing import TYPE_CHECKING

from app.domain import PushedImage, Resource
from app.progress import NullProgress, Progress
from targets.registry import V2Registry
from targets.sagemaker.client import AWS, error_code, tags
from targets.sagemaker.settings import check_registry

if TYPE_CHECKING:
    from app.store.journal import Journal

REPOSITORY_KIND = "ecr_repository"


class ECRRegistry(V2Registry):
    """The ECR repository ``repository_name`` (``modelship/<deployment>`` by default)."""

    def __init__(
        self,
        aws: AWS,
        repository_name: str,
        deployment: str,
        *,
        host: str | None = None,
    ) -> None:
        # V2Registry.__init__ wants the full address now; ours needs the account id,
        # which costs an STS call: it is looked up on first use instead.
        self.aws = aws
        self.repository_name = repository_name
        self.deployment = deployment
        self._host_override = host
        self._host: str | None = host
        self.username = "AWS"
        self._password = self._token
        self.timeout = 60.0
        self._words = ""
        self._cached: str | None = None

    # ---- where ------------------------------------------------------------------------
    @property  # type: ignore[override]
    def host(self) -> str:
        if self._host is None:
            self._host = f"{self.aws.account()}.dkr.ecr.{self.aws.region}.amazonaws.com"
        return self._host

    @property  # type: ignore[override]
    def path(self) -> str:
        return self.repository_name

    @property  # type: ignore[override]
    def repository(self) -> str:
        return f"{self.host}/{self.repository_name}"

    def describe(self) -> str:
        where = f" (through {self._host_override})" if self._host_override else ""
        return f"ECR repository {self.repository_name} in {self.aws.region}{where}"

    # ---- login ------------------------------------------------------------------------
    def _token(self) -> str:
        """A fresh ECR password (valid 12 hours); never stored or logged."""
        ecr = self.aws.client("ecr")
        with self.aws.errors("logging in to ECR (ecr:GetAuthorizationToken)"):
            data = ecr.get_authorization_token()["authorizationData"][0]
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        self.username = user or "AWS"
        return password

    def credentials(self) -> tuple[str, str] | None:
        if self._host_override:  # before the token is asked for, so it never leaves
            check_registry(self._host_override, self.aws.region)
        if self._cached is None:  # one token per registry object (one push or removal)
            self._cached = self._token()
        return self.username, self._cached

    # ---- the repository ---------------------------------------------------------------
    def exists(self) -> bool:
        ecr = self.aws.client("ecr")
        try:
            ecr.describe_repositories(repositoryNames=[self.repository_name])
        except ecr.exceptions.RepositoryNotFoundException:
            return False
        except Exception as exc:
            with self.aws.errors(f"looking up ECR repository {self.repository_name}"):
                raise exc
        return True

    def ensure_repository(self, journal: Journal, progress: Progress) -> None:
        """Create the repository if it is missing (journaled first, tagged as ours)."""
        if self.exists():
            progress.update(None, f"Using the existing {self.describe()}")
            return
        resource = Resource(
            REPOSITORY_KIND,
            self.repository_name,
            name=f"ECR repository {self.repository_name}",
            data={
                "region": self.aws.region,
                "aws_profile": self.aws.profile,
                "created": True,
            },
        )
        journal.record(resource)
        progress.update(None, f"Creating {self.describe()}")
        ecr = self.aws.client("ecr")
        with self.aws.errors(f"creating ECR repository {self.repository_name}"):
            answer = ecr.create_repository(
                repositoryName=self.repository_name,
                imageTagMutability="MUTABLE",
                tags=tags(self.deployment),
            )
        resource.data["uri"] = answer["repository"]["repositoryUri"]
        journal.update(resource)

    # ---- removing what was pushed ----------------------------------------------------
    def remove(
        self, pushed: PushedImage, progress: Progress | None = None, keep: Collection[str] = ()
    ) -> bool:
        """Delete the pushed image; through the mirror's registry API when the ``registry``
        setting names one, else with ECR's ``batch_delete_image``."""
        if self._host_override:
            return super().remove(pushed, progress, keep)
        progress = progress or NullProgress()
        if not pushed.digest:
            return False
        ecr = self.aws.client("ecr")
        try:
            found = ecr.describe_images(
                repositoryName=self.repository_name, imageIds=[{"imageDigest": pushed.digest}]
            )["imageDetails"]
        except Exception as exc:
            if error_code(exc) in {"RepositoryNotFoundException", "ImageNotFoundException"}:
                return False
            with self.aws.errors(f"looking up {pushed.ref}"):
                raise exc
        others = [
            t for d in found for t in d.get("imageTags") or [] if t != pushed.tag and t in keep
        ]
        if others:
            progress.log(f"Keeping {pushed.ref}: tag {others[0]} (another version) uses it")
            return False
        with self.aws.errors(f"deleting {pushed.ref} from ECR"):
            answer = ecr.batch_delete_image(
                repositoryName=self.repository_name, imageIds=[{"imageDigest": pushed.digest}]
            )
        if not answer.get("imageIds"):
            return False
        progress.update(None, f"Removed {pushed.tagged} from ECR")
        return True


def delete_repository(aws: AWS, name: str) -> bool:
    """Delete a repository ModelShip created, images and all; False if it was gone."""
    ecr = aws.client("ecr")
    try:
        ecr.delete_repository(repositoryName=name, force=True)
    except Exception as exc:
        if error_code(exc) == "RepositoryNotFoundException":
            return False
        with aws.errors(f"deleting ECR repository {name}"):
            raise exc
    return True


__all__ = ["REPOSITORY_KIND", "ECRRegistry", "delete_repository"]
