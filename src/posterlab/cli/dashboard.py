"""``posterlab dashboard``: the web dashboard over the results database."""

from __future__ import annotations

import os

import click

from posterlab.cli.common import (
    broker_option,
    cli,
    db_option,
    open_store,
    settings_from,
    wrap_errors,
)

TOKEN_ENV = "POSTERLAB_DASHBOARD_TOKEN"
MIN_TOKEN = 16  # characters: a token short enough to guess is refused


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 exposes the dashboard to the network.")
@click.option("--port", type=click.IntRange(1, 65535), default=8050, show_default=True)
@db_option
@broker_option
@click.option("--allow-actions", is_flag=True,
              help=f"Offer retry, cancel and re-analysis to browsers signed in with {TOKEN_ENV}.")
@wrap_errors
def dashboard(host: str, port: int, db: str | None, broker: str | None,
              allow_actions: bool) -> None:
    """Watch runs in the browser: progress, workers, failures, results; JSON under /api/.

    \b
    Examples:
      posterlab dashboard                          # http://127.0.0.1:8050
      posterlab dashboard --db postgresql://db-host/posterlab --port 9000
      POSTERLAB_DASHBOARD_TOKEN=$(openssl rand -hex 16) posterlab dashboard --allow-actions
      curl http://127.0.0.1:8050/api/runs/my-run   # the `status --json` object
    """
    from posterlab.dashboard import serve

    token = os.environ.get(TOKEN_ENV) or None
    if allow_actions and (token is None or len(token) < MIN_TOKEN):
        raise click.UsageError(f"--allow-actions needs {TOKEN_ENV} set to a secret of at "
                               f"least {MIN_TOKEN} characters, e.g. "
                               f"`export {TOKEN_ENV}=$(openssl rand -hex 16)`")
    store = open_store(settings_from(db=db, broker=broker), readonly=not allow_actions,
                       existing=True)
    click.echo(f"posterlab dashboard on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    try:
        serve(store, host=host, port=port, allow_actions=allow_actions, token=token)
    finally:
        store.close()
