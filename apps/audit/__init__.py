"""The audit log. Other apps call `from apps.audit import audit` then `audit.record(...)`."""
