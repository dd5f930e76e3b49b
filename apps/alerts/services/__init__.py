"""Writes for alerts (docs/decisions/0008-services-own-state-changes.md). Split by concern:

- `channels`: channel CRUD and test messages;
- `channel_state`: what delivery needs of a channel (its full config, the disable a permanent
  error causes), re-exported by `channels`;
- `policies`: escalation policy CRUD;
- `outbox`: incident events -> Notification rows, grouping of opened notices;
- `escalation`: the incident-event batch listener, the escalation walk, its holds and its sweep;
- `delivery`: claiming, sending, retrying, the dead-letter retry and the lost-task sweep.
"""
