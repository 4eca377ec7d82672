"""Challenges: the codes, captchas and approvals portal runs wait for, and their broker."""
