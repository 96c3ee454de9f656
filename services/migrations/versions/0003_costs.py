"""Costs: what the provider says a task cost, in US dollars, beside the estimate.

Runway reports credits on a finished task, LiangXin the credits consumed; both are turned
into dollars when polled (services/lifecycle.py). NULL where the provider said nothing,
which is every row made before this revision: spending then falls back to the estimate
(services/spending.py).

Revision ID: 0003_costs
Revises: 0002_lifecycle
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_costs"
down_revision = "0002_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("cost_usd", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("tasks", "cost_usd")
