"""Pure wire-protocol code: message framing, compression, batching.

Nothing in this package imports :mod:`asyncio`; it turns values into bytes and
bytes into values, and is tested without sockets.
"""
