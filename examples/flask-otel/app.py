"""A Flask service that logs the same security events as seclog-app, through OpenTelemetry.

Each event is a Python log record whose attributes carry the OCSF names of docs/app-logging.md
(`class_uid`, `activity_id`, `status_id`, `severity_id`, `user.name`, `src_endpoint.ip`,
`correlation_id`, ...); the OpenTelemetry SDK ships them to seclog's OTLP/HTTP endpoint, where
they land in `otlp/<service.name>` with the attributes under `attributes.`.

What it does right, compared with the usual example:
- the outcome of a login is what happened, with the reason in the log and not in the reply;
- the client address comes from X-Forwarded-For only behind a trusted proxy (ProxyFix with a
  configured number of proxies), never blindly;
- secrets are redacted before a record leaves the process (RedactingFilter);
- a correlation id (X-Request-Id, else a new one) links the request log to its events and is
  returned to the caller;
- the exporter batches in the background and retries: a slow or absent collector does not
  block requests.

Run it:  SECLOG_URL=http://127.0.0.1:8080 SECLOG_TOKEN=slt_... python3 app.py
Self-test (used by seclog's tests): python3 app.py --selftest
"""

import logging
import os
import re
import sys
import time
import uuid
from urllib.parse import urlencode

from flask import Flask, g, jsonify, request
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from werkzeug.middleware.proxy_fix import ProxyFix

SERVICE = "flask-app"
USERS = {"alice": "wonderland"}  # a real service keeps password hashes

SECRET_NAME = re.compile(
    r"(password|passwd|secret|token|authorization|cookie|api[_-]?key|private[_-]?key|credential)",
    re.I,
)
CREDENTIAL_VALUE = re.compile(
    r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9\-._~+/]{8,}=*"
    r"|\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"
    # name=value pairs of a logged query string or form body
    r"|(?i:\b[a-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key)[a-z0-9_.-]*=[^&\s]*)"
)
# Attributes every LogRecord has: not the application's.
STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Replaces secret-named attributes and credential-shaped values before export."""

    def filter(self, record):
        for name, value in list(vars(record).items()):
            if name in STANDARD:
                continue
            if SECRET_NAME.search(name):
                setattr(record, name, "[REDACTED]")
            elif isinstance(value, str):
                setattr(record, name, CREDENTIAL_VALUE.sub("[REDACTED]", value))
        if isinstance(record.msg, str):
            record.msg = CREDENTIAL_VALUE.sub("[REDACTED]", record.msg)
        return True


def setup_logging():
    provider = LoggerProvider(
        resource=Resource.create({"service.name": SERVICE, "service.version": "1.0.0"})
    )
    exporter = OTLPLogExporter(
        endpoint=os.environ["SECLOG_URL"].rstrip("/") + "/v1/logs",
        headers={"Authorization": "Bearer " + os.environ["SECLOG_TOKEN"]},
        compression=Compression.Gzip,
    )
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    set_logger_provider(provider)
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("security")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return provider, logger


def create_app(logger, trusted_proxies=0):
    app = Flask(__name__)
    if trusted_proxies:
        # Believe exactly this many proxies' X-Forwarded-For entries, counted from the right.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted_proxies)

    def context():
        return {
            "correlation_id": g.correlation_id,
            "src_endpoint.ip": request.remote_addr,
            "http_request.http_method": request.method,
            "http_request.url.path": request.url_rule.rule if request.url_rule else None,
            "http_request.user_agent": request.headers.get("User-Agent", ""),
        }

    def security_event(message, level, **attributes):
        event = context()
        event.update(attributes)
        logger.log(level, message, extra={k: v for k, v in event.items() if v is not None})

    @app.before_request
    def start():
        given = request.headers.get("X-Request-Id", "")
        valid = 0 < len(given) <= 128 and re.fullmatch(r"[A-Za-z0-9._:-]+", given)
        g.correlation_id = given if valid else str(uuid.uuid4())
        g.started = time.monotonic()

    @app.after_request
    def finish(response):
        response.headers["X-Request-Id"] = g.correlation_id
        security_event(
            f"{request.method} {request.url_rule.rule if request.url_rule else '(no route)'} {response.status_code}",
            logging.INFO,
            class_uid=4002,
            activity_id=6 if request.method == "POST" else 3,
            severity_id=1,
            status_id=1 if response.status_code < 400 else 2,
            **{
                "http_response.code": response.status_code,
                "duration": (time.monotonic() - g.started) * 1000.0,
            },
        )
        return response

    @app.post("/login")
    def login():
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        # The line a developer adds while chasing a login bug: the filter redacts it.
        logger.info(
            "login request",
            extra={
                "body": urlencode(request.form),
                "authorization": request.headers.get("Authorization", ""),
                "password": password,
                "correlation_id": g.correlation_id,
            },
        )
        expected = USERS.get(username)
        if expected is None or expected != password:
            reason = "unknown user" if expected is None else "wrong password"
            security_event(
                "login failed",
                logging.WARNING,
                class_uid=3002,
                activity_id=1,
                type_uid=300201,
                status_id=2,
                status_detail=reason,
                severity_id=4,
                **{"user.name": username},
            )
            return jsonify(error="invalid credentials"), 401
        security_event(
            "login succeeded",
            logging.INFO,
            class_uid=3002,
            activity_id=1,
            type_uid=300201,
            status_id=1,
            severity_id=1,
            **{"user.name": username},
        )
        return jsonify(ok=True)

    return app


def selftest():
    """One good login and three bad ones from 203.0.113.5 behind one trusted proxy."""
    provider, logger = setup_logging()
    app = create_app(logger, trusted_proxies=1)
    client = app.test_client()
    ok = client.post(
        "/login",
        data={"username": "alice", "password": "wonderland"},
        headers={"X-Request-Id": "flask-ok", "X-Forwarded-For": "203.0.113.5"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert ok.status_code == 200 and ok.headers["X-Request-Id"] == "flask-ok"
    for attempt in range(3):
        bad = client.post(
            "/login",
            data={"username": "alice", "password": f"guess-{attempt}"},
            headers={
                "X-Request-Id": f"flask-fail-{attempt}",
                "X-Forwarded-For": "203.0.113.5",
                "Authorization": "Bearer abcdefghijklmnop",
            },
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        )
        assert bad.status_code == 401
    # Every record exported before exit.
    assert provider.force_flush(10_000)
    provider.shutdown()
    print("selftest sent")


if __name__ == "__main__":
    if "--selftest" in sys.argv:
        selftest()
    else:
        _, security_logger = setup_logging()
        create_app(security_logger, trusted_proxies=int(os.environ.get("TRUSTED_PROXIES", "0"))).run(
            host="127.0.0.1", port=int(os.environ.get("PORT", "5000"))
        )
