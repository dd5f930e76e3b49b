"""The audit log has no background work: entries are written in the changing transaction.

(Retention is deliberately absent: an append-only record that expires silently is not one.)
"""
