"""`mailbot web`: serve the console, and manage its accounts (`mailbot web user ...`).

Listed in the main CLI's COMMAND_MODULES; the commands use the main group's context object
(config, sessions, clock) and import Flask only when they run.
"""

from __future__ import annotations

import json

import click

ROLE_CHOICE = click.Choice(["clerk", "viewer"])


@click.group(invoke_without_command=True)
@click.option("--listen", metavar="HOST:PORT", help="Address to listen on (default: [web] listen, 127.0.0.1:8080).")
@click.pass_context
def web(ctx, listen):
    """The clerks' web console: month overview, schools, quarantine, messages, outbox, downloads.

    Without a subcommand, serve it (waitress) until stopped. Put it behind nginx with HTTPS
    (deploy/README.md); accounts are made with `mailbot web user add`.

    \b
    Examples:
      mailbot --config config.toml web --listen 127.0.0.1:8080
      mailbot --config config.toml web user add wang --role clerk
    """
    if ctx.invoked_subcommand is not None:
        return
    from mailbot.web.server import serve
    c = ctx.obj
    serve(c.config, c.sessions(), listen)


@web.group()
def user():
    """Accounts of the web console: a clerk may act, a viewer only looks.

    \b
    Example:
      mailbot web user list
    """


def _password(prompt: str) -> str:
    return click.prompt(prompt, hide_input=True, confirmation_prompt="Repeat the password", err=True)


@user.command("add")
@click.argument("name")
@click.option("--role", type=ROLE_CHOICE, required=True, help="clerk (may act) or viewer (only looks).")
@click.pass_obj
def user_add(c, name, role):
    """Add an account; the password is asked twice (stored as an argon2id hash).

    \b
    Example:
      mailbot web user add wang --role clerk
    """
    from mailbot.web.users import add_user
    password = _password(f"Password for {name}")
    with c.sessions().begin() as session:
        add_user(session, name, role, password, c.clock())
    click.echo(f"web user {name} added ({role})", err=True)


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list on stdout.")
@click.pass_obj
def user_list(c, as_json):
    """List the accounts.

    \b
    Example:
      mailbot web user list --json
    """
    from mailbot.web.users import list_users
    with c.sessions()() as session:
        users = list_users(session)
    if as_json:
        click.echo(json.dumps(users, ensure_ascii=False))
        return
    if not users:
        click.echo("no web users yet (add one with `mailbot web user add NAME --role clerk`)")
    for u in users:
        click.echo(f"{u['name']:<20} {u['role']:<7} last login {u['last_login_at'] or 'never'}")


@user.command("passwd")
@click.argument("name")
@click.pass_obj
def user_passwd(c, name):
    """Change an account's password (asked twice); its open sessions end.

    \b
    Example:
      mailbot web user passwd wang
    """
    from mailbot.web.users import set_password
    with c.sessions()() as session:
        from mailbot.web.users import _get
        _get(session, name)  # an unknown name fails before the password is asked
    password = _password(f"New password for {name}")
    with c.sessions().begin() as session:
        set_password(session, name, password, c.clock())
    click.echo(f"password of {name} changed; its sessions are ended", err=True)


@user.command("remove")
@click.argument("name")
@click.pass_obj
def user_remove(c, name):
    """Remove an account; its open sessions end.

    \b
    Example:
      mailbot web user remove wang
    """
    from mailbot.web.users import remove_user
    with c.sessions().begin() as session:
        remove_user(session, name)
    click.echo(f"web user {name} removed", err=True)


COMMANDS = (web,)
