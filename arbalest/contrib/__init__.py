"""Integrations with other tools; each needs its extra (``pip install 'arbalest[luigi]>=2'``).

- ``luigi``: ``PipelineTask``, a pipeline run as a Luigi task, complete when its journal
  says so.
- ``dagster``: ``pipeline_assets``, the tables a pipeline loads as Dagster assets,
  materialised with the run's figures and the journal's last load (``arbalest[dagster]``).
- ``airflow``: ``PipelineOperator``, a pipeline run as an Airflow task, its result in XCom
  and its plan in the rendered fields (``arbalest[airflow]``).
"""
