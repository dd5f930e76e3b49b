"""A real OpenID Connect provider on 127.0.0.1 for the single sign-on tests:
oidc-provider-mock's app (discovery, authorization form, token, keys, user info) under
werkzeug's threaded server. Its form lets the test type the subject, which it also returns as
the `email` claim."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import oidc_provider_mock
import werkzeug.serving


@contextmanager
def serve_oidc_provider() -> Iterator[str]:
    """Yields the issuer URL (http://127.0.0.1:<port>)."""
    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, oidc_provider_mock.app(require_nonce=False), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
