"""`manage.py check_secrets`: does every stored secret decrypt with the configured keys?

Run it after a restore, after changing HEALTHORCH_ENCRYPTION_KEYS or SECRET_KEY, and before
dropping an old key from the ring. It reads every field an app declared with
`crypto.stored_encrypted` and reports, per field, how many secrets are stored and decrypt, and
for the rest which key they need and what to do. It prints key ids, never keys or secrets, and
exits 1 when any secret does not decrypt.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.core import crypto

_EXAMPLES = 5  # row ids shown per missing key; the count says how many there are


class Command(BaseCommand):
    help = "Check that every stored secret decrypts with the configured encryption keys."

    def handle(self, *args: Any, **options: Any) -> None:
        ring = crypto.keys()  # a malformed key already stopped the process at start
        self.stdout.write("Encryption keys (the first encrypts new secrets):")
        for key in ring:
            self.stdout.write(f"  {key.id}  from {key.source}")

        failed = 0
        total = 0
        problems: dict[tuple[str, str], str] = {}  # (code, key id) -> the operator's message
        for model, field in sorted(crypto.ENCRYPTED_FIELDS, key=lambda mf: mf[0]._meta.label):
            label = f"{model._meta.label}.{field}"
            stored = ok = legacy = 0
            by_key: dict[str, int] = defaultdict(int)  # key id -> secrets it decrypts
            missing: dict[tuple[str, str], list[str]] = defaultdict(list)
            rows = model._default_manager.exclude(**{field: ""}).values_list("pk", field)
            for pk, value in rows.iterator(chunk_size=500):
                stored += 1
                named = crypto.key_id_of(value)
                legacy += not named
                try:
                    crypto.decrypt(value)
                except crypto.SecretUnavailable as exc:
                    missing[(exc.code, exc.key_id)].append(str(pk))
                    problems[(exc.code, exc.key_id)] = exc.detail
                else:
                    ok += 1
                    by_key[named or "no key id"] += 1
            total += stored
            failed += stored - ok
            line = f"{label}: {stored} stored, {ok} decrypt"
            if by_key:  # before dropping an old key from the ring: nothing may still need it
                line += " (" + ", ".join(f"{n} with {k}" for k, n in sorted(by_key.items())) + ")"
            if legacy:
                line += f"; {legacy} written before secrets named their key"
            self.stdout.write(line if ok == stored else self.style.ERROR(line))
            for (code, key_id), pks in sorted(missing.items()):
                what = (
                    f"need key {key_id}"
                    if key_id
                    else "predate key ids and open with no configured key"
                )
                if code == "secret_damaged":
                    what = f"are damaged (key {key_id} is configured)"
                shown = ", ".join(pks[:_EXAMPLES]) + (", ..." if len(pks) > _EXAMPLES else "")
                self.stdout.write(self.style.ERROR(f"  {len(pks)} {what}: {shown}"))

        if failed:
            for detail in problems.values():
                self.stderr.write(detail)
            raise CommandError(f"{failed} of {total} stored secrets cannot be decrypted.")
        self.stdout.write(self.style.SUCCESS(f"All {total} stored secrets decrypt."))
