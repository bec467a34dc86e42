"""Names that any warehouse reserves are quoted on every warehouse.

SQLAlchemy quotes an identifier only when its dialect's preparer counts it as a reserved
word, and the lists the three dialects carry are short of what the warehouses' parsers
refuse as bare names: duckdb-engine knows only DuckDB's fully reserved keywords (not ``at``,
``by``, ``glob``, ``semi``, ``anti``, ``asof``, ``positional``, nor column-name keywords such
as ``time`` or ``values``), SQLAlchemy's PostgreSQL list lacks ``lateral``, ``collation``,
``concurrently`` and ``tablesample``, and sqlalchemy-redshift's lacks ``interval``.

Arbalest's column and table names are lowercase, so quoting one changes how it is parsed and
nothing else. ``install()`` gives the preparers of DuckDB, PostgreSQL and Redshift (each
its own copy) every keyword that one of the three warehouses does not take as a bare name.
It runs once, when ``arbalest.schema`` is imported, so every engine and dialect Arbalest
makes or receives quotes the same names, and so do the DDL that ``arbalest ddl`` prints and
SQL a user compiles from a schema's table.
"""

from __future__ import annotations

from typing import Final

import duckdb

__all__ = ["POSTGRESQL_KEYWORDS", "REDSHIFT_RESERVED_WORDS", "install", "quoted_keywords"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: PostgreSQL's keywords that are not "unreserved" (reserved, type or function names, column
#: names): ``pg_get_keywords()`` of PostgreSQL 15, and the JSON and MERGE keywords of 16 and 17.
POSTGRESQL_KEYWORDS: Final = _words(
    """
    all analyse analyze and any array as asc asymmetric authorization between bigint binary
    bit boolean both case cast char character check coalesce collate collation column
    concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user dec decimal default
    deferrable desc distinct do else end except exists extract false fetch float for foreign
    freeze from full grant greatest group grouping having ilike in initially inner inout int
    integer intersect interval into is isnull join json_array json_arrayagg json_exists
    json_object json_objectagg json_query json_scalar json_serialize json_table json_value lateral
    leading least left like limit localtime localtimestamp merge_action national natural nchar
    none normalize not notnull
    null nullif numeric offset on only or order out outer overlaps overlay placing position
    precision primary real references returning right row select session_user setof similar
    smallint some substring symmetric system_user table tablesample then time timestamp to
    trailing treat trim true union unique user using values varchar variadic verbose when
    where window with xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces
    xmlparse xmlpi xmlroot xmlserialize xmltable
    """
)

#: Redshift's reserved words (Database Developer Guide, "Reserved words"), and ``start`` and
#: ``connect``, which the guide asks to quote although they are not reserved.
REDSHIFT_RESERVED_WORDS: Final = _words(
    """
    aes128 aes256 all allowoverwrite analyse analyze and any array as asc authorization az64
    backup between binary blanksasnull both bytedict bzip2 case cast check collate column
    constraint create credentials cross current_date current_time current_timestamp
    current_user current_user_id default deferrable deflate defrag delta delta32k desc
    disable distinct do else emptyasnull enable encode encrypt encryption end except
    explicit false for foreign freeze from full globaldict256 globaldict64k grant group gzip
    having identity ignore ilike in initially inner intersect interval into is isnull join
    leading left like limit localtime localtimestamp lun luns lzo lzop minus mostly16
    mostly32 mostly8 natural new not notnull null nulls off offline offset oid old on only
    open or order outer overlaps parallel partition percent permissions pivot placing
    primary raw readratio recover references rejectlog resort respect restore right select
    session_user similar snapshot some sysdate system table tag tdes text255 text32k then
    timestamp to top trailing true truncatecolumns union unique unnest unpivot user using
    verbose wallet when where with without start connect
    """
)


def _duckdb_keywords() -> frozenset[str]:
    """DuckDB's keywords that are not "unreserved" (reserved, type or function names,
    column names), as this DuckDB lists them."""
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category <> 'unreserved'"
        ).fetchall()
    return frozenset(word for (word,) in rows)


def quoted_keywords() -> frozenset[str]:
    """Every word that DuckDB, PostgreSQL or Redshift does not take as a bare name."""
    return _duckdb_keywords() | POSTGRESQL_KEYWORDS | REDSHIFT_RESERVED_WORDS


def install() -> None:
    """Add ``quoted_keywords()`` to the reserved words of the three dialects' preparers.

    Each preparer class gets a set of its own (duckdb-engine adds DuckDB's reserved words to
    its preparer's set whenever a dialect is made; before this, that set was PostgreSQL's).
    Safe to call again.
    """
    from duckdb_engine import DuckDBIdentifierPreparer
    from sqlalchemy.dialects.postgresql.base import PGIdentifierPreparer
    from sqlalchemy_redshift.dialect import RedshiftIdentifierPreparer

    words = quoted_keywords()
    for preparer in (PGIdentifierPreparer, RedshiftIdentifierPreparer, DuckDBIdentifierPreparer):
        preparer.reserved_words = set(preparer.reserved_words) | words
