"""The YAML config: read with line numbers into frozen dataclasses, and edited for the TUI."""
