"""An unchanged Flask-Limiter app on the module: one import and a storage URI.

    RL_STORAGE_URI=ratelimit://127.0.0.1:6379 RL_STRATEGY=moving-window \\
        gunicorn -w 4 -b 127.0.0.1:8000 flask_limiter_app:app

The only lines that differ from a Flask-Limiter app on plain Redis are the
import of ``redis_ratelimit.limits_storage`` (it registers ``ratelimit://``
with limits) and the ``storage_uri`` scheme. Each request is limited per API
key (header X-Api-Key) to RL_LIMIT (default 100/hour); every answer names
the worker process that served it (X-Worker-Pid).
"""

from __future__ import annotations

import os

from flask import Flask, request
from flask_limiter import Limiter

import redis_ratelimit.limits_storage  # noqa: F401  registers ratelimit:// with limits

app = Flask(__name__)
limiter = Limiter(
    lambda: request.headers.get("X-Api-Key", request.remote_addr or "-"),
    app=app,
    storage_uri=os.environ.get("RL_STORAGE_URI", "ratelimit://127.0.0.1:6379"),
    strategy=os.environ.get("RL_STRATEGY", "fixed-window"),
    headers_enabled=True,
)


@app.after_request
def worker_pid(response):  # type: ignore[no-untyped-def]
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response


@app.route("/hello")
@limiter.limit(os.environ.get("RL_LIMIT", "100/hour"))
def hello() -> str:
    return "hello\n"


@app.route("/health")
@limiter.exempt
def health() -> str:
    return "ok\n"
