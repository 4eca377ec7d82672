"""The TUI's pages: home, documents, schedule, log, and the screen shown without a daemon."""
