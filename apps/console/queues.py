"""How many messages wait in each Celery queue, read from the broker without a worker.

Redis: kombu keeps a queue as lists (one per priority step); the depth is their LLEN sum.
Filesystem: one file per message, named `<ms>_<uuid>.<queue>.msg`. Any other broker, or a
broker that does not answer within a fraction of a second, is "unknown" rather than a guess.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings

# kombu's redis transport: queue name for priority 0, name + "\x06\x16" + step otherwise.
_REDIS_PRIORITY_STEPS = (0, 3, 6, 9)
_REDIS_SEP = "\x06\x16"
logger = logging.getLogger(__name__)


def queue_names() -> list[str]:
    return [settings.CELERY_TASK_DEFAULT_QUEUE] + [
        f"checks.{region}" for region in settings.HEALTHORCH_REGIONS
    ]


def queue_depths() -> dict[str, int | None]:
    """{queue: messages waiting, or None when the broker cannot tell us}."""
    names = queue_names()
    url = settings.CELERY_BROKER_URL
    try:
        if url.startswith(("redis://", "rediss://")):
            return _redis_depths(url, names)
        if url.startswith("filesystem://"):
            return _filesystem_depths(names)
    except Exception as exc:  # a dashboard must render while the broker is down
        logger.warning("queue depths unavailable: %s", exc)
    return dict.fromkeys(names)


def _redis_depths(url: str, names: list[str]) -> dict[str, int | None]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3)
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            for step in _REDIS_PRIORITY_STEPS:
                pipe.llen(name if step == 0 else f"{name}{_REDIS_SEP}{step}")
        sizes = pipe.execute()
    finally:
        client.close()
    steps = len(_REDIS_PRIORITY_STEPS)
    return {name: sum(sizes[i * steps : (i + 1) * steps]) for i, name in enumerate(names)}


def _filesystem_depths(names: list[str]) -> dict[str, int | None]:
    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
    counts = dict.fromkeys(names, 0)
    with os.scandir(folder) as entries:
        for entry in entries:
            queue_file = entry.name.partition(".")[2]
            queue = queue_file[: -len(".msg")] if queue_file.endswith(".msg") else None
            if queue in counts:
                counts[queue] += 1
    return counts
