"""The original Arbalest's import path: ``from arbalest.redshift import S3CopyPipeline``.

``schema`` keeps ``from arbalest.redshift.schema import JsonObject, Property``. Re-exports
only: the code is in ``arbalest.compat`` and ``arbalest.schema.functional``.
"""

from __future__ import annotations

from arbalest.compat import S3CopyPipeline

S3BulkCopyPipeline = S3CopyPipeline

__all__ = ["S3BulkCopyPipeline", "S3CopyPipeline"]
