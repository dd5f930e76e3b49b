"""gunicorn settings for the web role (docker/entrypoint.sh, the systemd unit): the master
process serves the workers' summed metrics on METRICS_PORT, like the Celery worker and beat do
(docs/decisions/0014-every-process-serves-its-metrics.md). The master never loads Django, so
that port answers without the Host check and keeps answering while a worker restarts.

Everything else stays on the command line, where each deployment file sets it.
"""


def when_ready(server):
    from healthorch.metrics import serve_from_environment

    serve_from_environment(role="web", forks=True)


def child_exit(server, worker):
    from healthorch.metrics import process_exited

    process_exited(worker.pid)
