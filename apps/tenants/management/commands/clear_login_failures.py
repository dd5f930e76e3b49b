"""Lift sign-in throttles before their window ends (they expire by themselves anyway)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.tenants import services


class Command(BaseCommand):
    help = (
        "Forget failed sign-ins counted against an email (from every client), a client "
        "address, or, with --all, every one, so the console and API login accept them again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--email", help="the email or user name typed at sign-in")
        parser.add_argument("--client", help="the client address (as the server sees it)")
        parser.add_argument("--all", action="store_true", help="every throttled sign-in")

    def handle(self, *args, **options) -> None:
        email, client = options["email"], options["client"]
        if not (email or client or options["all"]):
            raise CommandError("Say whose failures to clear: --email, --client or --all.")
        if options["all"] and (email or client):
            raise CommandError("--all clears everything; give it alone.")
        removed = services.login_throttles_clear(email=email, client=client)
        self.stdout.write(f"cleared {removed} sign-in throttle bucket(s)")
