"""The SQLAlchemy dialect of ``redshift+data://`` URLs: sqlalchemy-redshift's Redshift SQL,
sent through the Data API driver (``_redshift_data``)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import PGDialect, PGExecutionContext
from sqlalchemy_redshift.dialect import RedshiftDialectMixin

from arbalest.backends import _redshift_data, _redshift_driver

__all__ = ["RedshiftDataDialect"]


class _Context(PGExecutionContext):
    def pre_exec(self) -> None:
        return None


class RedshiftDataDialect(RedshiftDialectMixin, PGDialect):  # type: ignore[misc]  # untyped base
    """Redshift SQL over the Data API (no connection into the VPC; see ``_redshift_data``)."""

    driver = "data"
    default_paramstyle = "named"
    supports_statement_cache = False
    supports_sane_multi_rowcount = False
    use_setinputsizes = False
    use_insertmanyvalues = False
    execution_ctx_cls = _Context

    @classmethod
    def import_dbapi(cls) -> ModuleType:
        return _redshift_driver

    def create_connect_args(self, url: sa.URL) -> tuple[list[Any], dict[str, Any]]:
        return [], {"api": _redshift_data.RedshiftDataAPI.from_url(url)}

    def is_disconnect(self, e: Exception, connection: Any, cursor: Any) -> bool:
        return isinstance(e, _redshift_driver.Error) and e.lost

    def on_connect(self) -> None:
        return None

    def set_isolation_level(self, dbapi_connection: Any, level: str) -> None:
        # every batch runs in the warehouse's own isolation; no call sets it
        return None

    def get_isolation_level(self, dbapi_connection: Any) -> Any:
        return "SERIALIZABLE"

    def do_ping(self, dbapi_connection: Any) -> bool:
        return True
