from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.billing import services
from apps.core.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Create or update a Stripe Product and monthly Price for every paid plan and store the "
        "price ids on the plans. Safe to run again: it changes nothing the second time."
    )

    def handle(self, *args, **options) -> None:
        try:
            report = services.plans_sync_to_stripe()
        except ServiceError as exc:
            raise CommandError(exc.detail) from exc
        for code, price_id, action in report:
            self.stdout.write(f"{code:<12} {price_id:<40} {action}")
