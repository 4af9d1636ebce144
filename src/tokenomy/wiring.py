"""tokenomy.wiring (see ARCHITECTURE.md)."""
