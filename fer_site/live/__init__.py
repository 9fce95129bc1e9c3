"""The live WebSocket: where perception (``emotions``) meets adaptation (``adaptation``).

It belongs to the composition layer, beside URL and ASGI routing: the apps it
joins import nothing from here.
"""
