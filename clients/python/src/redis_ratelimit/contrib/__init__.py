"""Framework glue: :mod:`.asgi` (Starlette, FastAPI, any ASGI app),
:mod:`.wsgi` (any WSGI app) and :mod:`.asok` (the Asok framework)."""
