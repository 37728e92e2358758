"""The engine under the public API (issue 12).

Everything between the facades (client, database, collection, cursors, change stream, GridFS,
the Motor names) and the connection layers: :mod:`~amongo.engine.core` (what the engine needs
from a client), :mod:`~amongo.engine.executor` (select → check out → stamp → send → classify →
retry), :mod:`~amongo.engine.session` (sessions and transactions),
:mod:`~amongo.engine.operations` (command builders, reply handlers, bulk write planning) and
:mod:`~amongo.engine.clock` (cluster-time comparison).

Rule: nothing in this package imports a facade module.
"""
