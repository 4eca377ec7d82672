"""`gmid verify`: the archive folder checked against the index, and safe repairs."""
