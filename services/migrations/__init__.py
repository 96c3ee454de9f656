"""Alembic revisions of the store's schema (applied by services/schema.py, never by hand)."""
