"""Error signatures: log lines at level error and above, grouped by drain3 into templates per
organization and source (docs/decisions/0026).

Mining runs off the ingest path, in a beat task every minute (`signatures_mine`):

1. **Discovery** (one short transaction on the watermark row, the `ErrorMiner` with no
   organization): the organizations with error lines past the watermark get a backlog flag;
   the watermark moves to the highest line id read at the start.
2. **Mining**, per organization with a backlog (its `ErrorMiner` row locked with SKIP LOCKED,
   so two workers never mine one organization): up to `BATCH` error lines past its cursor,
   oldest first, go through one drain3 TemplateMiner per source, rebuilt from the row's
   state; then signatures, hourly and per-minute counts are upserted set-based (one statement
   per table and chunk, never one per line) and the new state and cursor are written, all in
   one transaction.

Numbers, UUIDs, long hex ids and IP addresses are masked before drain3 sees a line (its
masking configuration), so lines differing only in them are one signature. Warnings are not
mined: they are what a service says when it copes, and mining them would let a chatty warning
drown the errors in the report and the alert rule.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.persistence_handler import PersistenceHandler
from drain3.template_miner_config import TemplateMinerConfig

from apps.telemetry.models import (
    ErrorMiner,
    ErrorSignature,
    ErrorSignatureHour,
    ErrorSignatureMinute,
    Level,
    LogLine,
)

logger = logging.getLogger(__name__)
# drain3 logs every miner it starts and every snapshot at INFO: one line per source per run.
logging.getLogger("drain3").setLevel(logging.WARNING)

#: the levels mined
ERROR_LEVELS = (Level.ERROR, Level.FATAL)
#: error lines one organization's run mines at most (the rest waits for the next minute)
BATCH = 5000
#: organizations one run mines at most (oldest first; the rest waits for the next minute)
MAX_ORGS = 200
#: seconds after which a run starts no further organization (one batch is ~2 s here), so a
#: run ends well inside the minute and its task's time limit
BUDGET_SECONDS = 40.0
#: clusters one source's miner keeps (least recently seen ones are forgotten past it)
MAX_CLUSTERS = 1000
#: how long per-minute counts are kept (the rule's short window is at most an hour)
MINUTES_KEPT = timedelta(hours=2)
#: rows per upsert statement (far under SQLite's variable limit)
CHUNK = 500

# Order matters: UUIDs and addresses before the plain numbers inside them.
MASKS = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "UUID"),
    (r"(?<![\w.:])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])", "IP"),
    (r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{1,4}(?![\w:])", "IP"),
    (r"(?<!\w)0x[0-9a-fA-F]+(?!\w)", "HEX"),
    (r"(?<!\w)(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}(?!\w)", "HEX"),
    (r"(?<![A-Za-z_.\d])-?\d+(?:\.\d+)?", "NUM"),
)


def miner_config() -> TemplateMinerConfig:
    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(p, name) for p, name in MASKS]
    config.drain_max_clusters = MAX_CLUSTERS
    config.snapshot_compress_state = True
    config.parametrize_numeric_tokens = True
    return config


class _Held(PersistenceHandler):
    """drain3's persistence seam, backed by bytes the caller reads from and writes to the
    organization's ErrorMiner row (in the transaction that stores what the state produced)."""

    def __init__(self, state: bytes | None) -> None:
        self.state = state

    def save_state(self, state: bytes) -> None:
        self.state = state

    def load_state(self) -> bytes | None:
        return self.state


class Miners:
    """The TemplateMiners of one organization, one per source, from and to one state blob
    (zlib-compressed JSON: {source: drain3's own compressed snapshot})."""

    def __init__(self, blob: bytes = b"") -> None:
        self._states: dict[str, str] = json.loads(zlib.decompress(blob)) if blob else {}
        self._miners: dict[str, TemplateMiner] = {}

    def miner(self, source: str) -> TemplateMiner:
        miner = self._miners.get(source)
        if miner is None:
            # Built without a handler so drain3 does not snapshot on every new cluster; the
            # state is loaded here and saved once, at the end of the batch (`blob`).
            miner = TemplateMiner(None, miner_config())
            state = self._states.get(source)
            if state:
                miner.persistence_handler = _Held(state.encode())
                miner.load_state()
                miner.persistence_handler = None
            self._miners[source] = miner
        return miner

    def add(self, source: str, message: str) -> tuple[int, str]:
        """(cluster id, template) of the line."""
        result = self.miner(source).add_log_message(message)
        return result["cluster_id"], result["template_mined"]

    def blob(self) -> bytes:
        for source, miner in self._miners.items():
            held = _Held(None)
            miner.persistence_handler = held
            miner.save_state("batch")
            miner.persistence_handler = None
            self._states[source] = held.state.decode()
        return zlib.compress(json.dumps(self._states, sort_keys=True).encode())


def signature_hash(source: str, template: str) -> str:
    return hashlib.sha256(f"{source}\n{template}".encode()).hexdigest()[:16]


def _hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def signatures_mine(
    *,
    now: datetime | None = None,
    batch: int = BATCH,
    max_orgs: int = MAX_ORGS,
    budget: float = BUDGET_SECONDS,
) -> dict[str, int]:
    """One run: discover organizations with new error lines, mine each one's backlog (bounded
    by `batch` lines per organization, `max_orgs` organizations and `budget` seconds), forget
    per-minute counts past MINUTES_KEPT. Returns counts for the log."""
    now = now or timezone.now()
    deadline = time.monotonic() + budget
    discovered = _discover()
    org_ids = list(
        ErrorMiner.objects.filter(organization__isnull=False, backlog=True)
        .order_by("updated_at", "id")
        .values_list("organization_id", flat=True)[:max_orgs]
    )
    lines = signatures = 0
    mined_orgs = 0
    for org_id in org_ids:
        if time.monotonic() > deadline:
            break
        mined_orgs += 1
        n, s = _mine_org(org_id, now=now, batch=batch)
        lines += n
        signatures += s
    pruned = ErrorSignatureMinute.objects.filter(minute__lt=now - MINUTES_KEPT).delete()[0]
    if lines:
        logger.info(
            "error signatures mined",
            extra={"organizations": mined_orgs, "lines": lines, "signatures": signatures},
        )
    return {
        "discovered": discovered,
        "organizations": mined_orgs,
        "lines": lines,
        "signatures": signatures,
        "pruned": pruned,
    }


def _discover() -> int:
    """Flag the organizations with error lines past the watermark; move the watermark."""
    with transaction.atomic():
        if not ErrorMiner.objects.filter(organization__isnull=True).exists():
            ErrorMiner.objects.create(organization=None)
        mark = (
            ErrorMiner.objects.select_for_update(skip_locked=True)
            .filter(organization__isnull=True)
            .order_by("id")
            .first()
        )
        if mark is None:  # another run is discovering
            return 0
        top = LogLine.objects.aggregate(m=Max("id"))["m"] or 0
        if top <= mark.cursor:
            return 0
        org_ids = list(
            LogLine.objects.filter(id__gt=mark.cursor, id__lte=top, level__in=ERROR_LEVELS)
            .order_by()
            .values_list("organization_id", flat=True)
            .distinct()
        )
        if org_ids:
            ErrorMiner.objects.bulk_create(
                [ErrorMiner(organization_id=o) for o in org_ids], ignore_conflicts=True
            )
            ErrorMiner.objects.filter(organization_id__in=org_ids).update(backlog=True)
        ErrorMiner.objects.filter(pk=mark.pk).update(cursor=top, updated_at=timezone.now())
        return len(org_ids)


def _mine_org(org_id: Any, *, now: datetime, batch: int) -> tuple[int, int]:
    with transaction.atomic():
        row = (
            ErrorMiner.objects.select_for_update(skip_locked=True)
            .filter(organization_id=org_id, backlog=True)
            .first()
        )
        if row is None:  # another worker has it, or it was just finished
            return 0, 0
        lines = list(
            LogLine.objects.filter(
                organization_id=org_id, level__in=ERROR_LEVELS, id__gt=row.cursor
            )
            .order_by("id")
            .values_list("id", "ts", "source", "message")[:batch]
        )
        miners = Miners(bytes(row.state))
        sigs: dict[tuple[str, int], list] = {}
        hours: dict[tuple[str, int, datetime], int] = defaultdict(int)
        minutes: dict[tuple[str, int, datetime], int] = defaultdict(int)
        recent = now - MINUTES_KEPT
        for _, ts, source, message in lines:
            cluster, template = miners.add(source, message)
            key = (source, cluster)
            sig = sigs.get(key)
            if sig is None:
                sigs[key] = [template, ts, ts, 1]
            else:
                sig[0] = template
                sig[1] = min(sig[1], ts)
                sig[2] = max(sig[2], ts)
                sig[3] += 1
            hours[(source, cluster, _hour(ts))] += 1
            if ts >= recent:
                minutes[(source, cluster, _minute(ts))] += 1
        if sigs:
            ids = signatures_upsert(org_id=org_id, sigs=sigs, now=now)
            counts_add(ErrorSignatureHour, "hour", org_id=org_id, ids=ids, counts=hours.items())
            counts_add(
                ErrorSignatureMinute, "minute", org_id=org_id, ids=ids, counts=minutes.items()
            )
        ErrorMiner.objects.filter(pk=row.pk).update(
            cursor=lines[-1][0] if lines else row.cursor,
            backlog=len(lines) >= batch,
            state=miners.blob() if lines else row.state,
            updated_at=timezone.now(),
        )
    return len(lines), len(sigs)


def _prep(model: type, name: str, value: Any) -> Any:
    return model._meta.get_field(name).get_db_prep_value(value, connection)


def _insert_chunked(sql: str, rows: list[tuple], size: int = CHUNK) -> None:
    """Run the INSERT `sql` once per `size` rows, its `{values}` formatted to that many
    parameter tuples and every value passed as a parameter."""
    if not rows:
        return
    placeholders = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
    with connection.cursor() as cursor:
        for i in range(0, len(rows), size):
            chunk = rows[i : i + size]
            values = ", ".join([placeholders] * len(chunk))
            cursor.execute(sql.format(values=values), [v for row in chunk for v in row])


def signatures_upsert(
    *, org_id: Any, sigs: dict[tuple[str, int], list], now: datetime
) -> dict[tuple[str, int], int]:
    """Insert or widen the signatures (template, first/last seen, total) in one statement per
    chunk; returns {(source, cluster id): signature id} from one read."""
    table = ErrorSignature._meta.db_table
    org = _prep(ErrorSignature, "organization", org_id)
    created = _prep(ErrorSignature, "created_at", now)
    rows = [
        (
            org,
            source,
            cluster,
            template,
            signature_hash(source, template),
            _prep(ErrorSignature, "first_seen", first),
            _prep(ErrorSignature, "last_seen", last),
            n,
            created,
        )
        for (source, cluster), (template, first, last, n) in sigs.items()
    ]
    # Both databases take ON CONFLICT ... DO UPDATE with `excluded`; only the table name is
    # formatted in, every value is a parameter.
    sql = (
        f"INSERT INTO {table} (organization_id, source, cluster_id, template, hash, "  # noqa: S608
        "first_seen, last_seen, total, created_at) VALUES {values} "
        "ON CONFLICT (organization_id, source, cluster_id) DO UPDATE SET "
        "template = excluded.template, "
        f"first_seen = CASE WHEN excluded.first_seen < {table}.first_seen "
        f"THEN excluded.first_seen ELSE {table}.first_seen END, "
        f"last_seen = CASE WHEN excluded.last_seen > {table}.last_seen "
        f"THEN excluded.last_seen ELSE {table}.last_seen END, "
        f"total = {table}.total + excluded.total"
    )
    _insert_chunked(sql, rows)
    sources = {source for source, _ in sigs}
    return {
        (source, cluster): pk
        for pk, source, cluster in ErrorSignature.objects.filter(
            organization_id=org_id, source__in=sources, cluster_id__in={c for _, c in sigs}
        ).values_list("id", "source", "cluster_id")
        if (source, cluster) in sigs
    }


def counts_add(
    model: type, bucket: str, *, org_id: Any, ids: dict[tuple[str, int], int], counts: Iterable
) -> None:
    """Add counts to (signature, bucket) rows, inserting the missing ones: one statement per
    chunk."""
    table = model._meta.db_table
    org = _prep(model, "organization", org_id)
    rows = [
        (ids[(source, cluster)], org, _prep(model, bucket, at), n)
        for (source, cluster, at), n in counts
    ]
    sql = (
        f"INSERT INTO {table} (signature_id, organization_id, {bucket}, count) "  # noqa: S608
        "VALUES {values} "
        f"ON CONFLICT (signature_id, {bucket}) DO UPDATE SET "
        f"count = {table}.count + excluded.count"
    )
    _insert_chunked(sql, rows)
