"""The audit log. Other apps record through `from apps.audit import services as audit`, then
`audit.record(...)`."""
