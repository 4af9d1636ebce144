"""tokenomy.emulator.brains."""
