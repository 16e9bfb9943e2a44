#!/usr/bin/env python3
"""A hookd webhook receiver using only Python's standard library.

    HOOKD_WEBHOOK_SECRET=s3cret PORT=9000 python3 examples/python/receiver.py

It verifies X-CG-Hook-Signature, accepts each delivery id once, answers 200
at once and handles the event afterwards in a worker thread. It prints
"accepted <delivery> <type>" for a new delivery, "duplicate <delivery>" for
one it has seen, and "handled <event> <type> for <org>" once the work is
done; refused requests go to standard error.
"""

import hashlib
import hmac
import json
import os
import queue
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ.get("HOOKD_WEBHOOK_SECRET", "").encode()
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "9000"))
MAX_BODY = 1 << 20  # hookd's deliveries stay far below this

# Delivery ids already accepted. In memory, so forgotten at restart: a real
# receiver records the id in its database, in the same transaction as the
# work, under a unique constraint.
seen = set()
seen_lock = threading.Lock()
work = queue.Queue()


def valid_signature(body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    # http.server decodes headers as latin-1, so encoding back gives the
    # bytes received; compare_digest takes the same time wherever they differ.
    return hmac.compare_digest(expected.encode(), header.encode("latin-1"))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            return self.answer(400, "bad Content-Length")
        if length > MAX_BODY:
            return self.answer(413, "body too large")
        # The signature covers the raw bytes: verify them before decoding JSON.
        body = self.rfile.read(length)
        delivery = self.headers.get("X-CG-Hook-Delivery", "")
        if not valid_signature(body, self.headers.get("X-CG-Hook-Signature", "")):
            print(f"rejected {delivery}: bad signature", file=sys.stderr, flush=True)
            return self.answer(401, "invalid signature")
        with seen_lock:
            duplicate = delivery in seen
            seen.add(delivery)
        if duplicate:
            # Still 200: the delivery did arrive, and any other answer makes
            # hookd try again.
            print(f"duplicate {delivery}", flush=True)
        else:
            print(f"accepted {delivery} {self.headers.get('X-CG-Hook-Event')}", flush=True)
            work.put(body)
        self.answer(200, "ok")

    def answer(self, status, text):
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass  # one line per delivery is printed above instead


def worker():
    """Does the work of each accepted delivery, after hookd has had its answer."""
    while True:
        event = json.loads(work.get())
        # The real work goes here: open a ticket, notify a channel, ...
        # event["data"] has the shape of its type: GET /v1/event-types/{type}.
        print(f"handled {event['id']} {event['type']} for {event['organization_id']}", flush=True)


def main():
    if not SECRET:
        sys.exit("set HOOKD_WEBHOOK_SECRET to the webhook's secret")
    threading.Thread(target=worker, daemon=True).start()
    server = ThreadingHTTPServer((HOST, PORT), Receiver)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
