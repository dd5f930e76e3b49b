"""The two calls other apps make: `audit.snapshot(obj)` before a change, `audit.record(...)`
after it (same transaction). Re-exported here so hooks elsewhere stay one import and one line."""

from apps.audit.services import record, snapshot

__all__ = ["record", "snapshot"]
