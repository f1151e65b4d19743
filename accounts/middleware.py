"""Request ids, the current request for audit trails, and 403 logging."""

import contextvars
import logging
import re
import uuid

from django.conf import settings

current_request = contextvars.ContextVar("current_request", default=None)
current_request_id = contextvars.ContextVar("current_request_id", default="")

security_log = logging.getLogger("security")

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
