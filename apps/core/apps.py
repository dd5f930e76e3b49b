from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from apps.core import crypto

        # A malformed encryption key fails every process at start, naming its position, rather
        # than the first request that needs a secret.
        try:
            crypto.keys()
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from None
