"""What the CLI and the TUI share: the wire protocol and the async client, and beside them the
socket's path, the reading of a cookies.txt file and how sizes read. Nothing of the daemon's."""
