"""What the commands share: finding the office they were asked about."""
from __future__ import annotations

import sys

import click


def office_or_exit(rt, office_id: str):
    """The office's profile, or exit 2 (misuse) naming the known offices."""
    office = rt.offices.get(office_id)
    if office is None:
        click.echo(f"unknown office: {office_id} (known: {', '.join(sorted(rt.offices))})", err=True)
        sys.exit(2)
    return office
