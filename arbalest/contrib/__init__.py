"""Integrations with other tools; each needs its extra (``pip install 'arbalest[luigi]>=2'``).

- ``luigi``: ``PipelineTask``, a pipeline run as a Luigi task, complete when its journal
  says so.
"""
