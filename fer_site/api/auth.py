"""Who may call the REST API, for what, and how often.

A third-party app sends ``Authorization: Api-Key <key>``; the key's scopes say
which endpoints it may use. A signed-in staff user may use every endpoint from
the browser (the interactive docs), with CSRF protection. Each key, and each
staff user, has a request budget per period counted in the shared cache, so
all server processes enforce one budget.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from fer_site.api.keys import api_key_find
from fer_site.api.rates import parse_rate
from fer_site.models import ApiKey

KEYWORD = "Api-Key"


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticate ``Authorization: Api-Key <key>``; ``request.auth`` becomes the :class:`ApiKey`."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None  # not ours: let session authentication try
        # The messages never repeat what was sent: it may be a real secret with a typo.
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the key as 'Authorization: Api-Key <key>'.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            key = ""
        api_key = api_key_find(key=key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("The API key is not valid, or it was revoked or expired.")
        return AnonymousUser(), api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class HasApiScope(BasePermission):
    """Allow an API key holding the view's ``required_scope``, or an active staff user."""

    def has_permission(self, request: Request, view: Any) -> bool:
        scope = getattr(view, "required_scope", None)
        if isinstance(request.auth, ApiKey):
            if scope is not None and request.auth.has_scope(scope):
                return True
            raise exceptions.PermissionDenied(
                f"This API key does not have the '{scope}' scope.", code="missing_scope"
            )
        user = request.user
        if user is not None and user.is_authenticated:
            if user.is_active and user.is_staff:
                return True
            raise exceptions.PermissionDenied("Only staff accounts may use the API when signed in.")
        return False  # DRF answers 401 not_authenticated


class ApiKeyThrottle(BaseThrottle):
    """Count requests per key (or staff user) in fixed windows kept in the shared cache.

    ``cache.add`` and ``cache.incr`` are atomic on Redis and on the local-memory
    cache, so concurrent requests in any number of processes never both take
    the last slot. A client may burst up to twice the rate across a window
    boundary; that is the price of one cache round trip per request.
    """

    def allow_request(self, request: Request, view: Any) -> bool:
        ident, rate = self._ident_and_rate(request)
        if ident is None:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = f"api:throttle:{ident}:{period}:{window}"
        cache.add(key, 0, timeout=period + 1)
        try:
            hits = cache.incr(key)
        except ValueError:  # the window expired between add and incr
            cache.add(key, 1, timeout=period + 1)
            hits = 1
        self._wait = (window + 1) * period - now
        return hits <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)

    def _ident_and_rate(self, request: Request) -> tuple[str | None, str]:
        if isinstance(request.auth, ApiKey):
            return f"key:{request.auth.prefix}", request.auth.throttle_rate or settings.API_THROTTLE_RATE
        user = request.user
        if user is not None and user.is_authenticated:
            return f"user:{user.pk}", settings.API_THROTTLE_RATE
        return None, settings.API_THROTTLE_RATE


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "fer_site.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`: create a key in the admin or with `manage.py create_api_key`.",
        }
