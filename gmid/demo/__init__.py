"""The local demo: sample invoice mails and a supplier portal on loopback."""
