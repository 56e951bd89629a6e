"""The migrations build exactly the schema the models describe, on every backend, idempotently."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.db import Database, upgrade_schema
from bot.schema import Base


def test_migrations_match_models(empty_database_url):
    db = Database(empty_database_url)
    try:
        upgrade_schema(db)
        upgrade_schema(db)  # a second run (another process starting) finds nothing to do
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        db.dispose()


def test_migrations_have_one_head():
    """The next migration has one obvious parent (feature branches are merged)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from bot.db import MIGRATIONS_DIR

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1
