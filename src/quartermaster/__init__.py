"""Quartermaster: an offline-first inventory and ledger server."""

__version__ = "0.1.0"
