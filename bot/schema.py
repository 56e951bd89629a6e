"""Every module that defines tables, imported together (Alembic and the schema test need them all)."""
from bot import models  # noqa: F401
from bot import form_models  # noqa: F401
from bot.staff import models as staff_models  # noqa: F401
from bot.simulator import models as simulator_models  # noqa: F401
from bot import channels as channel_models  # noqa: F401
from bot.models import Base

__all__ = ["Base"]
