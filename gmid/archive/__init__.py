"""The archive: documents filed once, durably, under templated names, and the SQLite index."""
