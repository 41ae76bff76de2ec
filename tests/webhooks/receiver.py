"""A webhook receiver for the tests: verifies every delivery with the `standardwebhooks`
package (an implementation independent of sessiond's), answers 500 to the first FAIL_FIRST
deliveries (an outage), then 204, and prints one JSON line per delivery."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

WEBHOOK = Webhook(os.environ["WEBHOOK_SECRET"])
fail_first = int(os.environ.get("FAIL_FIRST", "0"))
# Requests are handled on threads of their own: one at a time decides and prints.
lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        global fail_first
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            payload = WEBHOOK.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = None, False
        with lock:
            status = 204 if verified else 400
            if verified and fail_first > 0:
                fail_first -= 1
                status = 500
            print(json.dumps({"id": headers.get("webhook-id"), "verified": verified,
                              "status": status, "event": payload}), flush=True)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
