"""E-mail ingest: finding documents in a mail, filing them, the SMTP listener; IMAP in `imap`."""
