"""The control socket's server side: JSON-RPC over a Unix socket, one table of methods."""
