"""Request ids, the current request for audit trails, the access log and 403 logging."""

import contextvars
import logging
import re
import time
import uuid
from urllib.parse import parse_qsl, urlencode

from django.conf import settings

current_request = contextvars.ContextVar("current_request", default=None)
current_request_id = contextvars.ContextVar("current_request_id", default="")

security_log = logging.getLogger("security")
access_log = logging.getLogger("access")

# A caller may pass its own id; anything else is replaced, so logs stay clean.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id.get()
        return True


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.id = incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        id_token = current_request_id.set(request.id)
        request_token = current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(request_token)
            current_request_id.reset(id_token)
        response["X-Request-ID"] = request.id
        return response


def request_user():
    """The signed-in user of the request being served, or None (shell, worker)."""
    request = current_request.get()
    user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and user.is_authenticated else None


def client_address(request):
    """The client's IP address, for logs and sign-in throttling. Behind
    IMAGINEER_PROXY_COUNT proxies it is the address the outermost one saw, the count-th
    from the right of X-Forwarded-For (what the client itself sent there is to its left);
    without proxies the header is ignored, since anyone can send it."""
    count = settings.IMAGINEER_PROXY_COUNT
    if count:
        forwarded = [
            address.strip()
            for address in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if address.strip()
        ]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR", "")


class SecurityLogMiddleware:
    """Log every permission denial, from pages, the admin and the API alike."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 403:
            user = request_user()
            security_log.warning(
                "permission denied",
                extra={
                    "event": "permission_denied",
                    "path": request.path,
                    "method": request.method,
                    "user_id": user.pk if user else None,
                    "address": client_address(request),
                },
            )
        return response


# Query parameters and URL parts whose values never reach the access log: API tokens,
# keys (allauth's password-reset and email-confirmation links carry one in the path),
# passwords, signatures, OAuth codes and states.
SENSITIVE = re.compile(r"token|key|pass|secret|sig|code|state|auth|session|csrf", re.IGNORECASE)
REDACTED = "[redacted]"


def loggable_path(request):
    """The path, with the values of sensitive URL parts (e.g. `<key>`) redacted."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    for name, value in (match.kwargs.items() if match else ()):
        if SENSITIVE.search(name) and str(value):
            path = path.replace(str(value), REDACTED)
    return path


def loggable_query(request):
    """The query string, with the values of sensitive parameters redacted."""
    query = request.META.get("QUERY_STRING", "")
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(name, REDACTED if SENSITIVE.search(name) else value)
                      for name, value in pairs], safe="[]")


class AccessLogMiddleware:
    """One line per request in the JSON logs (the `access` logger): method, path, query
    (sensitive values redacted), status, duration, user id, request id and the client's
    address (as sign-in throttling sees it: IMAGINEER_PROXY_COUNT). No header and no body
    is logged, so neither tokens nor passwords are.

    Placed just inside RequestIdMiddleware: it times everything else, and its line
    carries the request id. The duration ends when the response is ready, before a
    streamed body (a file download) is sent.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        user = getattr(request, "user", None)  # none for what whitenoise serves
        access_log.info(
            "request",
            extra={
                "event": "request",
                "method": request.method,
                "path": loggable_path(request),
                "query": loggable_query(request),
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "user_id": user.pk if user is not None and user.is_authenticated else None,
                "address": client_address(request),
            },
        )
        return response
