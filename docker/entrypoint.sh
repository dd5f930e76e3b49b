#!/usr/bin/env bash
# Container entrypoint: the first argument picks the role of this process.
#
#   web      gunicorn (runs migrations first only when MIGRATE_ON_START=1)
#   worker   Celery worker for the queues in CELERY_QUEUES
#   beat     Celery beat with the database scheduler (run exactly one per deployment)
#   migrate  apply database migrations and exit
#   anything else is executed as given, e.g. `python manage.py createsuperuser`
#
# Extra arguments after a role are passed on to that program, so one-off tuning such as
# `worker --max-tasks-per-child=100` needs no image change.
set -euo pipefail

# prometheus-client's multiprocess mode crashes on the first metric if this folder is missing,
# and every Django process (web, worker, beat, migrate, shell) imports the metrics.
ensure_metrics_dir() {
    if [[ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]]; then
        mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    fi
}

# The web server empties the folder first: files left by worker processes of a previous run
# (a restarted container keeps its /tmp) would otherwise be summed into /metrics forever.
# Worker and beat only create it, so a folder shared with the web server is never wiped under it.
reset_metrics_dir() {
    if [[ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]]; then
        rm -rf "$PROMETHEUS_MULTIPROC_DIR"
        mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    fi
}

role="${1:-web}"
if [[ $# -gt 0 ]]; then
    shift
fi

case "$role" in
    web)
        reset_metrics_dir
        # Off by default: with several replicas starting at once every one would race to
        # migrate; run the `migrate` role (compose service, Kubernetes Job) once instead.
        if [[ "${MIGRATE_ON_START:-0}" == "1" ]]; then
            python manage.py migrate --noinput
        fi
        # --no-control-socket: gunicorn otherwise creates a control socket under $HOME, which is
        # the read-only /app for this user. --timeout 30 kills a worker stuck on one request.
        # --threads (gthread workers): a worker keeps its core busy while one request waits on
        # PostgreSQL; 2 sync workers left cores idle (benchmarks/pings.py, docs/benchmarks.md).
        exec gunicorn healthorch.wsgi:application \
            --bind "0.0.0.0:${PORT:-8000}" \
            --workers "${WEB_CONCURRENCY:-2}" \
            --threads "${WEB_THREADS:-4}" \
            --no-control-socket \
            --access-logfile - \
            --logger-class healthorch.accesslog.RedactingLogger \
            --timeout 30 \
            "$@"
        ;;
    worker)
        ensure_metrics_dir
        exec celery -A healthorch worker \
            --loglevel="${LOG_LEVEL:-INFO}" \
            --queues="${CELERY_QUEUES:-default,checks.default}" \
            --concurrency="${CELERY_CONCURRENCY:-4}" \
            "$@"
        ;;
    beat)
        ensure_metrics_dir
        # The schedule lives in the database (django-celery-beat), so no schedule file is
        # written; an empty --pidfile stops beat writing celerybeat.pid into the read-only /app.
        exec celery -A healthorch beat \
            --loglevel="${LOG_LEVEL:-INFO}" \
            --scheduler django_celery_beat.schedulers:DatabaseScheduler \
            --pidfile= \
            "$@"
        ;;
    migrate)
        ensure_metrics_dir
        exec python manage.py migrate --noinput "$@"
        ;;
    *)
        ensure_metrics_dir
        exec "$role" "$@"
        ;;
esac
