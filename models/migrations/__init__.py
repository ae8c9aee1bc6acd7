"""Alembic migrations of Palabre's schema; `palabre db upgrade` runs them."""
