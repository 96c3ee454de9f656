"""Alembic's entry point, run by `services.schema.upgrade` with a connection it has already
locked and begun a transaction on: the whole upgrade commits at once, or not at all."""

from __future__ import annotations

from alembic import context

_connection = context.config.attributes.get("connection")
if _connection is None or context.is_offline_mode():
    raise RuntimeError(
        "The store's migrations run through services.schema.upgrade(engine), which takes "
        "the lock that lets several processes start at once; not through the alembic command."
    )

context.configure(connection=_connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
