"""Placeholder for pipeline typing cases (filled by the pipeline issue)."""
