"""A monitor deleted while its check runs or records (found by benchmarks/soak.py under load:
DELETE answered 500, and a check batch lost all its results).

Both tests commit for real (transaction=True): the failures are foreign-key checks at commit.
"""

import threading
import time

import pytest
from django.db import connection, transaction

from apps.incidents.models import StatusChange
from apps.monitors import engine, services
from apps.monitors.models import CheckResult, Monitor
from tests.monitors import targets

pytestmark = pytest.mark.django_db(transaction=True)
http_target = targets.http_target


def _http(org, url, name):
    return services.monitor_create(
        org=org,
        data={"name": name, "kind": "http", "timeout_seconds": 2, "config": {"url": url}},
    )


def test_a_monitor_deleted_mid_check_costs_only_its_own_result(org, http_target):
    url = http_target.route("/ok")
    kept, gone = _http(org, url, "kept"), _http(org, url, "gone")
    batch = list(Monitor.objects.filter(pk__in=[kept.pk, gone.pk]).order_by("name"))
    outcomes = engine.run_batch([engine.spec_for(m) for m in batch])

    services.monitor_delete(monitor=gone)  # while the batch was checking
    rows = engine.results_record(monitors=batch, outcomes=outcomes, region="default")

    assert [r.monitor_id for r in rows] == [kept.pk]
    assert list(CheckResult.objects.values_list("monitor_id", flat=True)) == [kept.pk]
    assert Monitor.objects.get(pk=kept.pk).status == "up"


def test_deleting_a_monitor_whose_result_is_being_recorded_waits_and_succeeds(org, http_target):
    monitor = _http(org, http_target.route("/ok"), "web")
    outcomes = engine.run_batch([engine.spec_for(monitor)])
    recorded, failures = threading.Event(), []

    def record() -> None:
        try:
            with transaction.atomic():
                engine.results_record(monitors=[monitor], outcomes=outcomes, region="default")
                recorded.set()
                time.sleep(1.0)  # uncommitted while the delete arrives
        except Exception as exc:  # reported by the assertions below
            failures.append(exc)
        finally:
            recorded.set()
            connection.close()

    worker = threading.Thread(target=record)
    worker.start()
    assert recorded.wait(30)
    services.monitor_delete(monitor=monitor)  # was: IntegrityError at commit (a 500)
    worker.join(30)

    assert failures == []
    assert not Monitor.objects.filter(pk=monitor.pk).exists()
    assert not CheckResult.objects.filter(monitor_id=monitor.pk).exists()
    assert not StatusChange.objects.filter(monitor_id=monitor.pk).exists()
