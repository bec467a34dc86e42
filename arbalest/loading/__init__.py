"""Reading and converting the objects of a copy step: the path every warehouse Arbalest feeds
shares (Redshift's ``COPY`` reads its objects itself).

- ``reader``: objects to chunk files: streamed, decompressed, cut at line ends, read ahead.
- ``transform``: batches of chunks to typed rows and rejects, one DuckDB query per batch,
  with each column's conversion rule (``arbalest.convert``); ``query``: that query's SQL
  text; ``converter``: several batches converting at once, handed back in order.
- ``fastlane``: the plainest records converted in one pass in C (the ``_fastlane``
  extension: ``_fastlane.h`` and its ``_fastlane*.c`` units, built by ``pip install`` where a
  C compiler is), the rest left to ``transform``'s SQL path. ``pgcopy``: Arrow batches in
  PostgreSQL's binary ``COPY`` format, by the same extension (for the PostgreSQL backend).
- ``formats``: which format a step reads (``format=``, or the objects' suffixes), and
  ``CsvOptions``.
- ``tabular``: Parquet and CSV objects: each chunk's conversion query (CSV text through the
  JSON rules, Parquet types matched to fields), into the same batches as JSON.
- ``tabular_feed``: ``TabularFeed``, Parquet objects cut into chunks (read into Arrow for the
  Parquet lane) and CSV objects, read ahead by worker threads; ``csv_feed``: CSV read in
  Redshift's dialect into chunks; ``csv_lane``: CSV chunks whose values are all plain
  converted in Arrow alone, the rest written to chunk files for the query.
- ``parquet``: which Parquet types fit which fields, where each field's value is in an
  object's columns, and reading a Parquet footer; ``parquet_lane``: Parquet chunks whose
  values give no reject converted in Arrow alone, the rest left to the query.
- ``csv_reader``: ``CsvReader``, Redshift's CSV dialect record by record, with each record's
  line.
- ``records``: the exact reader for the lines the fast path leaves (records spanning lines,
  several on a line, malformed stretches).
- ``rejects``: the ``Reject`` record; ``drift``: the drift report; ``scratch``: the
  temporary folders of a load.

Nothing here writes to a warehouse or the journal: the backends do (``arbalest.backends``).
"""
