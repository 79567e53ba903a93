"""``posterlab faceapi serve``: the local Azure-compatible face-detection service."""

from __future__ import annotations

import os
from pathlib import Path

import click

from posterlab.cli.common import EXIT_USAGE, cli, wrap_errors

KEY_ENV = "POSTERLAB_FACE_API_KEY"
MAX_KEY_FILE_BYTES = 4096  # a key is ~32 characters; a bigger file is the wrong file


@cli.group()
def faceapi() -> None:
    """The local face-detection API service."""


def _refuse_key_option(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """``--key`` put the key where ``ps`` shows it to every user of the machine: refused."""
    if value is not None:
        click.echo(f"Error: --key is no longer accepted: a key on the command line is "
                   f"visible to every user of this machine (ps, /proc). Put it in the "
                   f"environment ({KEY_ENV}=...) or in a file readable only by you "
                   f"(--key-file FILE).", err=True)
        ctx.exit(EXIT_USAGE)


def read_key_file(path: Path) -> str:
    """The key in ``path`` (its first line, stripped); a clean error if it is unusable."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path} ({exc.strerror})",
                                 param_hint="--key-file") from None
    lines = data.decode("utf-8", errors="replace").splitlines()
    key = lines[0].strip() if lines else ""
    if len(data) > MAX_KEY_FILE_BYTES or not key:
        raise click.BadParameter(f"{path} must hold the key on its first line",
                                 param_hint="--key-file")
    return key


@faceapi.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5005, show_default=True)
@click.option("--rate", default=None, metavar="N/s",
              help="Server-side quota (answers 429 with Retry-After beyond it), e.g. 10/s.")
@click.option("--burst", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--key-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help=f"Require the Ocp-Apim-Subscription-Key in this file (first line) "
                   f"[default: env {KEY_ENV}; neither: any caller is served].")
@click.option("--key", default=None, hidden=True, expose_value=False, is_eager=True,
              callback=_refuse_key_option)
@wrap_errors
def serve(host: str, port: int, rate: str | None, burst: int, key_file: Path | None) -> None:
    """Serve the Azure Face detect protocol on the local detector.

    The key is never given on the command line (where `ps` shows it): it comes from
    POSTERLAB_FACE_API_KEY or from --key-file.

    \b
    Examples:
      posterlab faceapi serve --port 5005
      posterlab faceapi serve --host 0.0.0.0 --rate 10/s --key-file ~/.config/faceapi.key
      POSTERLAB_FACE_API_KEY=... posterlab faceapi serve --rate 10/s
    Then: POSTERLAB_FACE_PROVIDER=http POSTERLAB_FACE_API_URL=http://127.0.0.1:5005
    """
    from posterlab.config import parse_rate
    from posterlab.faces.server import serve as run_server

    key = read_key_file(key_file) if key_file is not None else os.environ.get(KEY_ENV) or None
    run_server(host, port, rate=parse_rate(rate, burst=burst) if rate else None, key=key)
