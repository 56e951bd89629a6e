"""`flask --app app …` commands, registered on the app."""
from __future__ import annotations

import functools

import click


def register_cli(app) -> None:
    from bot.cli.channels import channels_group
    from bot.cli.core import db_group, diagram_command, worker_command
    from bot.cli.dev import dev_command
    from bot.cli.keys import keys_group
    from bot.cli.offices import offices_group
    from bot.cli.richmenu import richmenu_group
    from bot.cli.staff import staff_group
    from bot.cli.terms import terms_group

    app.cli.add_command(db_group)
    app.cli.add_command(channels_group)
    app.cli.add_command(worker_command)
    app.cli.add_command(diagram_command)
    app.cli.add_command(offices_group)
    app.cli.add_command(richmenu_group)
    app.cli.add_command(staff_group)
    app.cli.add_command(terms_group)
    app.cli.add_command(dev_command)
    app.cli.add_command(keys_group)
    for command in app.cli.commands.values():
        # `db upgrade` is what the schema hint says to run: a missing table there is a migration's own error.
        _plain_database_errors(command, schema_hint=command is not db_group)


def _plain_database_errors(command: click.Command, schema_hint: bool = True) -> None:
    """A command stopped by the database (unreachable, gone while it ran, or its schema older than this release)
    prints what to do about it and exits 1 (`bot.db.database_problem`, `lost_problem`), not a driver traceback.
    Any other database error is printed as `describe_error` names it (type, SQLSTATE, where), never with its
    message: PostgreSQL's DETAIL quotes the row a constraint refused, and a command's output goes to the log.
    Commands are module objects that every app registers again: each is wrapped once."""
    for sub in getattr(command, "commands", {}).values():
        _plain_database_errors(sub, schema_hint)
    callback = command.callback
    if callback is None or getattr(callback, "plain_database_errors", False):
        return

    @functools.wraps(callback)
    def run(*args, **kwargs):
        from flask.cli import ScriptInfo
        from sqlalchemy.exc import DBAPIError

        from bot.config import ConfigError
        from bot.db import connect_problem, database_problem, describe_error, lost_problem

        rt = click.get_current_context().ensure_object(ScriptInfo).load_app().extensions.get("madoguchi")
        if rt is None:  # not madoguchi's app (a bare Flask app, as some tests build): nothing to wrap
            return callback(*args, **kwargs)
        rt.db.allow_long_statements()  # a command's statements may run long: not the webhook's timeouts
        try:
            return callback(*args, **kwargs)
        except DBAPIError as error:
            url = rt.db.url
            problem = (database_problem if schema_hint else connect_problem)(error, url) or lost_problem(error, url)
            raise ConfigError(problem or f"the command stopped on a database error: {describe_error(error)}") \
                from None

    run.plain_database_errors = True  # type: ignore[attr-defined]
    command.callback = run
