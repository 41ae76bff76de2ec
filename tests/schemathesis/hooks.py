"""Schemathesis hooks for sessiond: every request carries the service key and the bearer token
of a fresh administrator session, so that a generated logout or delete of the caller's own
session cannot leave the rest of the run without credentials."""

import itertools
import os

import requests
import schemathesis

BASE_URL = os.environ["SESSIOND_URL"]
SERVICE_KEY = os.environ["SESSIOND_SERVICE_KEY"]
_counter = itertools.count()


@schemathesis.auth(refresh_interval=None)
class FreshAdministrator:
    def get(self, case, context):
        response = requests.post(
            f"{BASE_URL}/sessions",
            json={
                "user_id": f"schemathesis-admin-{next(_counter)}",
                "name": "Schemathesis Admin",
                "ip_address": "127.0.0.1",
                "roles": ["admin"],
            },
            headers={"X-Service-Key": SERVICE_KEY},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
        case.headers["X-Service-Key"] = SERVICE_KEY


# A cursor is opaque: the only one a client may make up is the empty one (the first page).
# Cursors the server issued are exercised by the HTTP tests.
schemathesis.openapi.format("cursor", __import__("hypothesis").strategies.just(""))
