"""`flask --app app …` commands, registered on the app."""
from __future__ import annotations


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
