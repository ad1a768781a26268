"""Captioner implementations, registered by spec prefix (see ``base``)."""
