"""A small Stripe API server on 127.0.0.1 for what localstripe does not implement.

localstripe (the real stateful fake, see test_localstripe.py) has no Checkout Sessions, no
Billing Portal, no Prices, no /v1/account, and renders subscriptions in the 2017 shape. This
server answers those few endpoints in the current API shape (subscription items carrying
`price` and the billing period), keeps its objects in memory, and records every request, so
tests drive the product through the real stripe library and real HTTP.

Tests set a subscription's state with `put_subscription(...)`, then post a signed event
(`signed_event`) as Stripe would; the product re-fetches the subscription from here.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

API_VERSION = "2026-05-27.dahlia"
_ids = itertools.count(1)
_run = uuid.uuid4().hex[:8]  # ids differ between runs too: a kept database remembers events


def new_id(prefix: str) -> str:
    return f"{prefix}_test{_run}{next(_ids):08d}"


class FakeStripe:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict]] = {
            "customers": {},
            "subscriptions": {},
            "products": {},
            "prices": {},
            "checkout_sessions": {},
            "portal_sessions": {},
        }
        self.requests: list[tuple[str, str, dict]] = []
        self.fail_with: int | None = None  # answer every request with this status
        # Seconds to hold the next subscription read's answer (taken when the request arrived),
        # as a slow network would: lets a test race two readers.
        self.delay_next_subscription_read = 0.0
        self.lock = threading.Lock()
        self.url = ""

    # --- state helpers used by tests --------------------------------------------------------

    def put_subscription(
        self,
        *,
        customer: str,
        price: str,
        status: str = "active",
        sub_id: str | None = None,
        period_end: int | None = None,
        cancel_at_period_end: bool = False,
        metadata: dict | None = None,
    ) -> dict:
        now = int(time.time())
        sub_id = sub_id or new_id("sub")
        period_end = period_end or now + 30 * 86400
        existing = self.objects["subscriptions"].get(sub_id, {})
        sub = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "livemode": False,
            "created": existing.get("created", now),
            "cancel_at_period_end": cancel_at_period_end,
            "cancel_at": period_end if cancel_at_period_end else None,
            "canceled_at": now if status == "canceled" else None,
            "metadata": metadata or existing.get("metadata") or {},
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": f"si_{sub_id}",
                        "object": "subscription_item",
                        "price": {"id": price, "object": "price", "unit_amount": 2900},
                        "quantity": 1,
                        "current_period_start": period_end - 30 * 86400,
                        "current_period_end": period_end,
                    }
                ],
            },
        }
        self.objects["subscriptions"][sub_id] = sub
        return sub

    def calls(self, method: str, path_prefix: str) -> list[dict]:
        return [p for m, path, p in self.requests if m == method and path.startswith(path_prefix)]

    # --- request handling -------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str]) -> tuple[int, dict]:
        delay = 0.0
        with self.lock:
            self.requests.append((method, path, params))
            if self.fail_with is not None:
                return self.fail_with, _error("api_error", "The fake Stripe is failing on purpose.")
            parts = [p for p in path.split("/") if p][1:]  # drop "v1"
            status, payload = self._route(method, parts, params)
            payload = json.loads(json.dumps(payload))  # a snapshot of the state right now
            if method == "GET" and parts[:1] == ["subscriptions"]:
                delay, self.delay_next_subscription_read = self.delay_next_subscription_read, 0.0
        if delay:
            time.sleep(delay)
        return status, payload

    def _route(self, method: str, parts: list[str], params: dict) -> tuple[int, dict]:
        now = int(time.time())
        match (method, parts):
            case ("GET", ["account"]):
                return 200, {
                    "id": "acct_fakestripe",
                    "object": "account",
                    "type": "standard",
                    "country": "US",
                    "default_currency": "usd",
                    "email": "ops@example.test",
                    "settings": {"dashboard": {"display_name": "healthorch test"}},
                    "business_profile": {"name": "healthorch test"},
                    "charges_enabled": True,
                    "payouts_enabled": True,
                    "details_submitted": True,
                    "created": now,
                }
            case ("POST", ["customers"]):
                cus = {
                    "id": new_id("cus"),
                    "object": "customer",
                    "email": params.get("email"),
                    "name": params.get("name"),
                    "livemode": False,
                    "created": now,
                    "metadata": _sub_dict(params, "metadata"),
                    "invoice_settings": {"default_payment_method": None},
                    "balance": 0,
                    "currency": None,
                    "delinquent": False,
                }
                self.objects["customers"][cus["id"]] = cus
                return 200, cus
            case ("GET", ["customers", cid]):
                return self._get("customers", cid)
            case ("POST", ["checkout", "sessions"]):
                sid = new_id("cs")
                session = {
                    "id": sid,
                    "object": "checkout.session",
                    "url": f"https://checkout.stripe.test/c/pay/{sid}",
                    "mode": params.get("mode"),
                    "customer": params.get("customer"),
                    "client_reference_id": params.get("client_reference_id"),
                    "success_url": params.get("success_url"),
                    "cancel_url": params.get("cancel_url"),
                    "metadata": _sub_dict(params, "metadata"),
                    "line_items_price": params.get("line_items[0][price]"),
                    "status": "open",
                    "subscription": None,
                    "livemode": False,
                    "created": now,
                }
                self.objects["checkout_sessions"][sid] = session
                return 200, session
            case ("POST", ["billing_portal", "sessions"]):
                sid = new_id("bps")
                session = {
                    "id": sid,
                    "object": "billing_portal.session",
                    "customer": params.get("customer"),
                    "return_url": params.get("return_url"),
                    "url": f"https://billing.stripe.test/p/session/{sid}",
                    "livemode": False,
                    "created": now,
                }
                self.objects["portal_sessions"][sid] = session
                return 200, session
            case ("GET", ["subscriptions", sid]):
                return self._get("subscriptions", sid)
            case ("GET", ["subscriptions"]):
                subs = [
                    s
                    for s in self.objects["subscriptions"].values()
                    if s["customer"] == params.get("customer")
                ]
                return 200, _list(sorted(subs, key=lambda s: -s["created"]), "/v1/subscriptions")
            case ("GET", ["products", pid]):
                return self._get("products", pid)
            case ("POST", ["products"]):
                pid = params.get("id") or new_id("prod")
                product = {
                    "id": pid,
                    "object": "product",
                    "name": params.get("name"),
                    "active": True,
                    "metadata": _sub_dict(params, "metadata"),
                    "created": now,
                    "livemode": False,
                }
                self.objects["products"][pid] = product
                return 200, product
            case ("POST", ["products", pid]):
                status, product = self._get("products", pid)
                if status == 200:
                    product.update(
                        {k: v for k, v in params.items() if k in ("name",)},
                        active=params.get("active", "true") == "true",
                    )
                return status, product
            case ("GET", ["prices"]):
                keys = {v for k, v in params.items() if k.startswith("lookup_keys")}
                prices = [
                    p
                    for p in self.objects["prices"].values()
                    if p["lookup_key"] in keys and p["active"]
                ]
                return 200, _list(prices, "/v1/prices")
            case ("POST", ["prices"]):
                if params.get("transfer_lookup_key") == "true":
                    for other in self.objects["prices"].values():
                        if other["lookup_key"] == params.get("lookup_key"):
                            other["lookup_key"] = None
                price = {
                    "id": new_id("price"),
                    "object": "price",
                    "product": params.get("product"),
                    "unit_amount": int(params["unit_amount"]),
                    "currency": params.get("currency"),
                    "recurring": {"interval": params.get("recurring[interval]")},
                    "lookup_key": params.get("lookup_key"),
                    "active": True,
                    "metadata": _sub_dict(params, "metadata"),
                    "created": now,
                    "livemode": False,
                }
                self.objects["prices"][price["id"]] = price
                return 200, price
        return 404, _error("invalid_request_error", f"Unrecognized request URL {parts}.")

    def _get(self, kind: str, oid: str) -> tuple[int, dict]:
        obj = self.objects[kind].get(oid)
        if obj is None:
            return 404, _error(
                "invalid_request_error", f"No such object: '{oid}'", "resource_missing"
            )
        return 200, obj


def _error(kind: str, message: str, code: str | None = None) -> dict:
    return {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}


def _list(data: list[dict], url: str) -> dict:
    return {"object": "list", "data": data, "has_more": False, "url": url}


def _sub_dict(params: dict[str, str], name: str) -> dict[str, str]:
    prefix = f"{name}["
    return {k[len(prefix) : -1]: v for k, v in params.items() if k.startswith(prefix)}


@contextmanager
def serve() -> Iterator[FakeStripe]:
    fake = FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            params = dict(parse_qsl(split.query)) | dict(parse_qsl(body))
            status, payload = fake.handle(method, split.path, params)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", new_id("req"))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def do_DELETE(self) -> None:
            self._answer("DELETE")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def event_payload(
    event_type: str, obj: dict, *, event_id: str | None = None, created: int | None = None
) -> str:
    return json.dumps(
        {
            "id": event_id or new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": created or int(time.time()),
            "type": event_type,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": obj},
        }
    )


def sign(payload: str, secret: str) -> str:
    """The Stripe-Signature header exactly as Stripe computes it."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret)
