"""Creating API keys and finding the key a request presents."""

from __future__ import annotations

import re
from datetime import datetime

from django.db import transaction

from fer_site.models import ApiKey, Scope, validate_rate, validate_scopes

# The shape KeyGenerator produces: 8 letters or digits, a dot, 32 letters or digits.
_KEY_SHAPE = re.compile(r"[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}")


@transaction.atomic
def api_key_create(
    *, name: str, scopes: list[str], throttle_rate: str = "", expiry_date: datetime | None = None
) -> tuple[ApiKey, str]:
    """Create a key; return it and its secret, which is stored only as a hash and never shown again."""
    validate_scopes(scopes)
    scopes = sorted(set(scopes), key=Scope.values.index)
    if throttle_rate:
        validate_rate(throttle_rate)
    api_key = ApiKey(name=name, scopes=scopes, throttle_rate=throttle_rate, expiry_date=expiry_date)
    api_key.full_clean(exclude=["id", "prefix", "hashed_key"])
    return ApiKey.objects.create_key(
        name=name, scopes=scopes, throttle_rate=throttle_rate, expiry_date=expiry_date
    )


def api_key_find(*, key: str) -> ApiKey | None:
    """Return the usable key matching ``key`` (not revoked, not expired), or None."""
    if not isinstance(key, str) or not _KEY_SHAPE.fullmatch(key):
        return None  # never let arbitrary bytes reach the database
    try:
        api_key = ApiKey.objects.get_from_key(key)
    except ApiKey.DoesNotExist:
        return None
    return api_key if api_key.is_usable else None
