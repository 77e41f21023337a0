"""The input contract: how raw values from files, JSON and Arrow become typed rows.

- :mod:`.kinds`: the table of feature kinds (parsing, tokens, limits, error phrases);
- :mod:`.batch`: :class:`~.batch.Batch`, the typed rows every reader produces;
- :mod:`.arrow`: Arrow tables -> batches (behind files, Arrow request bodies and Spark);
- :mod:`.records`: JSON records -> batches (the service's requests);
- :mod:`.files`: CSV and Parquet files, streamed in blocks.

Import from the submodules: this package imports nothing heavy itself, so that the server, which
reads JSON, never loads pandas or pyarrow.
"""
