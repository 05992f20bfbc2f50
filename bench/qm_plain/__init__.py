"""Baseline (b): a minimal plain-Django app doing the same guarded stock update with no pipeline.

No authentication, idempotency, audit or change feed: one ORM UPDATE guarded by `qty + d >= 0`
and one SELECT of the new qty, in one transaction. Served by the same uvicorn, the same way.
"""
