#!/usr/bin/env python
"""A local webhook receiver for scripts/saas_e2e.sh: every POST body is appended as one JSON
line (with its headers) to the file given; answers 200. Binds 127.0.0.1 only.

usage: webhook_receiver.py PORT OUTPUT_FILE
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    port, output = int(sys.argv[1]), sys.argv[2]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payload = json.loads(body)
            except ValueError:
                payload = body.decode(errors="replace")
            with open(output, "a") as out:
                out.write(json.dumps({"headers": dict(self.headers), "body": payload}) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
