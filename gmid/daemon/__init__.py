"""The daemon process: its components, signals, systemd's protocol and the control socket."""
