"""Every dialect Arbalest feeds quotes the names any of the warehouses reserves."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
from sqlalchemy.schema import CreateTable
from sqlalchemy_redshift.dialect import RedshiftDialect_psycopg2

from arbalest.schema import quoting

DIALECTS = [DuckDBDialect, PGDialect_psycopg2, RedshiftDialect_psycopg2]

#: DuckDB's own keywords duckdb-engine left bare, PostgreSQL's that SQLAlchemy left bare,
#: and Redshift's that sqlalchemy-redshift left bare.
WORDS = ["at", "by", "glob", "semi", "anti", "asof", "positional", "lateral", "interval"]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@pytest.mark.parametrize("word", WORDS)
def test_keywords_are_quoted_by_every_dialect(dialect: type[sa.Dialect], word: str) -> None:
    table = sa.Table(word, sa.MetaData(), sa.Column(word, sa.Integer))
    ddl = str(CreateTable(table).compile(dialect=dialect()))
    assert ddl.split()[:3] == ["CREATE", "TABLE", f'"{word}"']
    assert f'\t"{word}" INTEGER' in ddl


def test_plain_names_stay_bare() -> None:
    preparer = DuckDBDialect().identifier_preparer
    assert [preparer.quote(n) for n in ["id", "name", "created_at"]] == ["id", "name", "created_at"]


def test_installing_again_changes_nothing() -> None:
    before = set(RedshiftDialect_psycopg2().identifier_preparer.reserved_words)
    quoting.install()
    assert set(RedshiftDialect_psycopg2().identifier_preparer.reserved_words) == before
    assert quoting.quoted_keywords() <= before
