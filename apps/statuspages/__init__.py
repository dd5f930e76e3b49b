"""Status pages, incident communication and badges.

The first outline put status pages under `apps/reports`. They live in their own app as they are
a domain of their own, not a report: pages, sections and subscribers are rows customers create
and edit, visitors (not members) read them anonymously, and incident updates and postmortems
are a communication workflow with its own email fan-out. `apps/reports` computes numbers; this
app publishes state. It reads monitors, rollups and incidents, and writes only its own tables.
See docs/decisions/0012-status-pages-in-their-own-app.md.
"""
