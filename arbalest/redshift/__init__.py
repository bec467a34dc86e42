"""The original Arbalest's import path: ``from arbalest.redshift import S3CopyPipeline``."""

from __future__ import annotations

from arbalest.compat import S3CopyPipeline

S3BulkCopyPipeline = S3CopyPipeline

__all__ = ["S3BulkCopyPipeline", "S3CopyPipeline"]
