"""What monitors tell the apps above them (connected in healthorch/wiring.py).

Every seam is sent inside the transaction that recorded the news, so a status and the incident
it opens can never disagree.
"""

from __future__ import annotations

from apps.core.events import Seam

# The shape of the `hour_context` answer, re-exported for the app that gives it.
from apps.monitors.accounting import HourContext as HourContext
from apps.monitors.accounting import Interval as Interval
from apps.monitors.accounting import union as union

#: one monitor's status changed: (monitor=, old=, new=, result=, at=)
status_change = Seam("monitors.status_change")

#: a batch's status changes at once, after the per-change listeners:
#: (changes=[(monitor, old, result), ...]). A thousand monitors going down together cost a
#: listener a few statements, not thousands.
status_changes = Seam("monitors.status_changes")

#: every folded batch, changed or not, after the status listeners (incidents count failures
#: while down and look at response times and certificates): (folded=[(monitor, results)])
fold = Seam("monitors.fold")

#: asked, not told: maintenance and parent-down intervals for monitors over an hour span, so a
#: rollup records what each result meant for an SLA: (monitor_ids=, start=, end=) ->
#: accounting.HourContext. The app that owns maintenance windows and dependencies answers; with
#: no answer nothing was in maintenance.
hour_context = Seam("monitors.hour_context")
