"""tokenomy.emulator."""
