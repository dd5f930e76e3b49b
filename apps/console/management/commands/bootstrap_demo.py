"""Create (once) the demo operator, organization and API key for the embedded default, and,
when the demo target runs (DEMO_TARGET_PORT), its monitors and the loop around them: an alert
webhook to the target, an escalation policy, a healing policy, a status page and a recurring
maintenance window (apps/console/demo/setup.py).

Idempotent: later runs print the same credentials, read back from the var folder (dev only;
the file is readable by its owner only). A key that was revoked meanwhile is replaced.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts import services as account_services
from apps.audit import services as audit
from apps.console.demo.setup import (
    STATUS_PAGE_SLUG,
    ensure_demo_loop,
    ensure_demo_target_monitors,
)
from apps.tenants import services
from apps.tenants.models import ApiKey, Organization


class Command(BaseCommand):
    help = "Create the demo superuser, organization and API key (DEBUG only) and print them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--email", default="admin@healthorch.local")
        parser.add_argument("--json", action="store_true", help="print credentials as JSON")

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("bootstrap_demo is for the embedded default only (DEBUG=1).")
        path = Path(settings.VAR_DIR) / "demo-credentials.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        creds = self._ensure(options["email"], saved)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(creds, indent=2))
        os.chmod(path, 0o600)
        if options["json"]:
            self.stdout.write(json.dumps(creds))
            return
        base = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        lines = [
            "",
            "  healthorch demo credentials",
            f"  admin console : {base}/admin/",
            f"  operator      : {creds['email']} / {creds['password']}",
            f"  organization  : {creds['organization']} (plan {creds['plan']})",
            f"  API key       : {creds['api_key']}",
        ]
        if os.environ.get("DEMO_TARGET_PORT"):
            target = f"http://127.0.0.1:{os.environ['DEMO_TARGET_PORT']}"
            lines += [
                f"  status page   : {base}/status/{STATUS_PAGE_SLUG}/",
                f"  deliveries    : {target}/deliveries (what the demo target received)",
            ]
        self.stdout.write("\n".join([*lines, ""]))

    @transaction.atomic
    def _ensure(self, email: str, saved: dict) -> dict:
        User = get_user_model()
        user = User.objects.filter(email=email).first()
        password = saved.get("password")
        if user is None or not password or not user.check_password(password):
            password = secrets.token_urlsafe(12)
            user = user or User(username=email, email=email)
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
        # The printed operator signs in at once: nobody clicks a verification link for it.
        account_services.email_mark_verified(user=user)
        org = Organization.objects.filter(slug="demo").first()
        if org is None:
            org = Organization.objects.create(name="Demo", slug="demo")
        services.owner_ensure(
            org=org, user=user, actor=audit.system_actor("manage.py bootstrap_demo")
        )
        self._demo_monitors(org)
        # Signs the alert webhooks and the restart hook; the demo target checks it (it reads
        # this file), as a customer's receiver would.
        hook_secret = saved.get("webhook_secret") or secrets.token_urlsafe(24)
        self._demo_target_monitors(org, hook_secret)
        api_key = saved.get("api_key")
        if not api_key or not self._key_works(api_key):
            api_key = services.api_key_create(
                org=org, name="demo", scopes=["read", "write"], created_by=user
            ).secret
        return {
            "email": email,
            "password": password,
            "organization": org.slug,
            "plan": org.plan_id,
            "api_key": api_key,
            "webhook_secret": hook_secret,
        }

    @staticmethod
    def _demo_monitors(org: Organization) -> None:
        """A few monitors against the running product itself, so the demo shows live data."""
        from apps.monitors.models import Monitor
        from apps.monitors.services import monitor_create
        from apps.plans.services import organization_change_plan

        if Monitor.objects.for_org(org).exists():
            return
        organization_change_plan(
            org=org, plan_code="pro", source="bootstrap_demo", reason="demo organization"
        )
        base = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        for data in (
            {
                "name": "healthorch health",
                "kind": "http",
                "interval_seconds": 60,
                "config": {
                    "url": f"{base}/health",
                    "assertions": ['json.status == "ok"', "response_time < 500ms"],
                },
            },
            {
                "name": "healthorch readiness",
                "kind": "http",
                "interval_seconds": 60,
                "config": {"url": f"{base}/ready"},
            },
            {
                "name": "web port",
                "kind": "tcp",
                "interval_seconds": 60,
                "config": {"host": "127.0.0.1", "port": int(os.environ.get("PORT", "8000"))},
            },
            {
                "name": "nightly job",
                "kind": "heartbeat",
                "config": {"period_seconds": 86400, "grace_seconds": 3600},
            },
        ):
            monitor_create(org=org, data=data)

    @staticmethod
    def _demo_target_monitors(org: Organization, hook_secret: str) -> None:
        """Monitors of the scripted demo target (scripts/embedded.py runs it and sets
        DEMO_TARGET_PORT), so the demo shows incidents opening and resolving, and the loop
        around them, so it shows alerting, escalation and healing too."""
        port = os.environ.get("DEMO_TARGET_PORT")
        if not port:
            return
        tls_port = os.environ.get("DEMO_TARGET_TLS_PORT")
        ensure_demo_target_monitors(
            org=org,
            port=int(port),
            tls_port=int(tls_port) if tls_port else None,
            cert_folder=Path(settings.VAR_DIR) / "demo-target",
        )
        ensure_demo_loop(org=org, port=int(port), secret=hook_secret)

    @staticmethod
    def _key_works(raw: str) -> bool:
        key = ApiKey.objects.filter(key_hash=services.hash_api_key(raw)).first()
        return key is not None and key.is_active()
