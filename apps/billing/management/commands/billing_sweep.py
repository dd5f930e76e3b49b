from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.billing import services


class Command(BaseCommand):
    help = "Apply ended grace periods, ended cancelled periods and expired comps now."

    def handle(self, *args, **options) -> None:
        changed = services.billing_sweep()
        self.stdout.write(f"{changed} organization(s) changed plan")
