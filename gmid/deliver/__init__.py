"""Delivering filed documents to where they are used next (paperless-ngx, an e-mail inbox, ...)."""
