"""Watching IMAP mailboxes: connections, IDLE, one sync pass per folder, its state."""
