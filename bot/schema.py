"""Every module that defines tables, imported together (Alembic and the schema test need them all)."""
from bot import models  # noqa: F401
from bot.models import Base

__all__ = ["Base"]
