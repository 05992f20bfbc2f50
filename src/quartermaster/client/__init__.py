"""The Python field client: a durable offline outbox on the device and the sync loop.

Imports no Django and nothing of the server (an import-linter contract checks it): it speaks
only the HTTP contract in API.md, so it runs on a device that has none of the server installed.

    store = DeviceStore("var/agent.sqlite3")
    customer = new_temp_id()
    store.record("customer.create", {"name": "Lakshmi Stores"}, client_temp_id=customer)
    session = Session(store, "http://127.0.0.1:8000", username="driver1", password="…",
                      device_id=store.device_id())
    report = SyncEngine(store, session).sync()
    store.resolve(customer)   # the server's permanent id
"""

from quartermaster.client.backoff import Backoff
from quartermaster.client.engine import SyncEngine, SyncReport
from quartermaster.client.photos import PhotoUploader, record_photo
from quartermaster.client.session import NeedsAttention, RetryLater, Session, SyncError
from quartermaster.client.store import DeviceStore, Op, OutboxError, new_temp_id

__all__ = [
    "Backoff",
    "DeviceStore",
    "NeedsAttention",
    "Op",
    "OutboxError",
    "PhotoUploader",
    "RetryLater",
    "Session",
    "SyncEngine",
    "SyncError",
    "SyncReport",
    "new_temp_id",
    "record_photo",
]
