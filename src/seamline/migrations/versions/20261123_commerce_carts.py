"""commerce: carts, promotions, coupons

Revision ID: 20261123_commerce_carts
Revises: 20261123_commerce
Create Date: 2026-11-23 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401


revision = '20261123_commerce_carts'
down_revision = '20261123_commerce'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
