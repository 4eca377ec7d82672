"""gmid: a self-hosted invoice collector."""

__version__ = "0.1.0"
