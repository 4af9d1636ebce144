"""The ledger: every run and call, in SQLite or PostgreSQL, written behind the request path.

- :class:`Ledger` opens (and migrates) a database: ``Ledger.open("sqlite:///…")``.
- :meth:`Ledger.writer` gives its :class:`LedgerWriter`, the write-behind
  :class:`~tokenomy.ports.UsageSink`.
- :mod:`tokenomy.ledger.queries` reads it back: per-run summaries, per-call rows.

See ``docs/design/ledger.md`` and ``docs/ledger-schema.md``.
"""

from tokenomy.ledger.codec import RunEvent
from tokenomy.ledger.store import Ledger, WriterOptions
from tokenomy.ledger.writer import LedgerWriter, WriterStats

__all__ = ["Ledger", "LedgerWriter", "RunEvent", "WriterOptions", "WriterStats"]
