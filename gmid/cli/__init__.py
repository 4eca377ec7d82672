"""The `gmid` command: one module per group of commands, their shared helpers in `common`."""
