"""Usage counters are upserted in one order, whoever adds to them (found by
benchmarks/soak.py: two check batches of the same organizations deadlocked on their counters
and PostgreSQL rolled one back, results and all).

The test commits for real (transaction=True) and needs PostgreSQL's row locks: SQLite
serializes writers, so there is no order to get wrong there.
"""

import threading

import pytest
from django.db import connection, transaction

from apps.plans.models import UsageCounter, UsageMetric
from apps.plans.services import usage_add_many
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)
CHECKS = UsageMetric.CHECKS_EXECUTED


def test_two_batches_adding_to_the_same_counters_in_opposite_orders_do_not_deadlock():
    if connection.vendor != "postgresql":
        pytest.skip("row locks in an order: PostgreSQL only")
    first, second = sorted((OrganizationFactory(), OrganizationFactory()), key=lambda o: str(o.pk))
    usage_add_many(counts=[(first.pk, CHECKS, 1), (second.pk, CHECKS, 1)])  # the rows exist
    holding, errors = threading.Event(), []

    def batch_one() -> None:
        try:
            with transaction.atomic():
                usage_add_many(counts=[(first.pk, CHECKS, 1)])
                holding.set()
                threading.Event().wait(1.0)  # batch two starts meanwhile
                usage_add_many(counts=[(second.pk, CHECKS, 1)])
        except Exception as exc:  # reported by the assertions below
            errors.append(exc)
        finally:
            holding.set()
            connection.close()

    one = threading.Thread(target=batch_one)
    one.start()
    assert holding.wait(30)
    try:
        with transaction.atomic():
            # Given second-then-first, as a batch's monitors may come: without one order this
            # took `second` and waited for `first`, while batch one held `first` and waited.
            usage_add_many(counts=[(second.pk, CHECKS, 1), (first.pk, CHECKS, 1)])
    except Exception as exc:  # reported by the assertions below
        errors.append(exc)
    one.join(30)

    assert errors == []
    values = dict(UsageCounter.objects.filter(metric=CHECKS).values_list("organization", "value"))
    assert values == {first.pk: 3, second.pk: 3}
