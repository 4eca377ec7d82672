"""The control socket's public side: the wire protocol and the async client."""
