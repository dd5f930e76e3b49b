"""A Stripe stand-in for the end-to-end script: tests/billing/fakestripe.py's API server, plus a
"customer paid" endpoint that does what Stripe does after a Checkout payment.

localstripe has no Checkout Session, and Stripe's hosted page cannot be reached
here, so `POST <complete_url>/<session id>` plays the payment: it creates the subscription for
the session's customer and price, marks the session complete, and delivers a signed
`checkout.session.completed` to the product's webhook, exactly as Stripe would sign it.
See docs/decisions/0005-testing-billing-without-stripe.md.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.billing import fakestripe

TEST_KEY = "sk_test_" + "healthorche2estandin012345"
WEBHOOK_SECRET = "whsec_healthorch_e2e_standin"


@contextmanager
def stripe_standin(product_url: str) -> Iterator[tuple[fakestripe.FakeStripe, str]]:
    """(the fake Stripe API, the completion URL) while in the block."""
    with fakestripe.serve() as fake:

        class Complete(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sid = self.path.strip("/").split("/")[-1]
                session = fake.objects["checkout_sessions"].get(sid)
                if session is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                sub = fake.put_subscription(
                    customer=session["customer"],
                    price=session["line_items_price"],
                    metadata=session["metadata"],
                )
                session.update(status="complete", subscription=sub["id"])
                payload = fakestripe.event_payload("checkout.session.completed", session)
                request = urllib.request.Request(  # noqa: S310 - the product on 127.0.0.1
                    f"{product_url}/billing/webhook",
                    data=payload.encode(),
                    method="POST",
                    headers={
                        "Content-Type": "application/json",
                        "Stripe-Signature": fakestripe.sign(payload, WEBHOOK_SECRET),
                    },
                )
                with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                    status = answer.status
                body = json.dumps({"subscription": sub["id"], "webhook_status": status}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Complete)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield fake, f"http://127.0.0.1:{server.server_address[1]}/complete"
        finally:
            server.shutdown()
            server.server_close()


def product_env(fake: fakestripe.FakeStripe) -> dict[str, str]:
    """What the product needs in its environment to use the stand-in."""
    return {
        "STRIPE_TEST_SECRET_KEY": TEST_KEY,
        "STRIPE_API_HOST": fake.url,
        "DJSTRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
