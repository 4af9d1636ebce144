"""Alembic migration scripts of the ledger, run programmatically by ``tokenomy.ledger.migrate``.

How to add one: ``docs/design/ledger.md`` ("Adding a migration").
"""
