"""Automatic actor and request context for application frameworks and
drivers. Each module is optional and imports only its own framework:
``context`` (the holder, no dependency), ``psycopg``, ``asyncpg``,
``sqlalchemy``, ``starlette`` (FastAPI and Starlette) and ``django``.
See docs/integrations/."""
