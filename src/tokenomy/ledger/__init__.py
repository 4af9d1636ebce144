"""tokenomy.ledger."""
