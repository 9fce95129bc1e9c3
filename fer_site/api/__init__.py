"""The REST toolkit every app's API uses: keys, auth, throttles, body parsers, errors, pagination, schema.

It imports no app: apps import it, and register how their own exceptions are
answered (:func:`fer_site.api.errors.api_error_register`).
"""
