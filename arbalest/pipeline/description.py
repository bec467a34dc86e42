"""What the runner needs of a pipeline: a plain description of the run.

``runner`` executes and plans a ``RunDescription``; ``builder.Pipeline`` is one (it has every
attribute below), but the runner never imports the builder, so the two do not depend on each
other both ways.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import sqlalchemy as sa

    from arbalest.backends.base import Backend
    from arbalest.pipeline.steps import Step
    from arbalest.stores.base import ObjectStore
    from arbalest.stores.credentials import Credentials

__all__ = ["RunDescription"]


class RunDescription(Protocol):
    """A run: its steps, the warehouse and store they use, and the options of the run."""

    @property
    def engine(self) -> sa.Engine:
        """The warehouse's engine."""

    @property
    def backend(self) -> Backend:
        """The backend serving the engine's dialect."""

    @property
    def store(self) -> ObjectStore | None:
        """The object store, if there is one."""

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps, in order."""

    @property
    def name(self) -> str | None:
        """The run's name, for logs and messages (``None``: unnamed)."""

    @property
    def metadata(self) -> str:
        """The run's own folder in the store (manifests, JSONPaths files)."""

    @property
    def iam_role(self) -> str | None:
        """The IAM role Redshift's ``COPY`` assumes (``None``: credentials or the default)."""

    @property
    def credentials(self) -> Credentials | None:
        """Credentials for the store and for Redshift's ``COPY``."""

    @property
    def region(self) -> str | None:
        """The AWS region of the store."""

    @property
    def lock_timeout(self) -> float:
        """Seconds to wait for another run's lock."""

    def using(self, *, warehouse: sa.Engine) -> RunDescription:
        """The same run against another warehouse (``validate`` uses an empty stand-in)."""
        ...
