import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
django_application = get_wsgi_application()

# Heartbeat pings skip Django's middleware stack (apps/monitors/wsgi.py says what it keeps).
from apps.monitors.wsgi import PingFastPath  # noqa: E402

application = PingFastPath(django_application)
