"""Delivery of filed documents to where they are used next (see gmid/deliver/base.py)."""
