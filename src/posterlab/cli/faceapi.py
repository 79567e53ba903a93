"""``posterlab faceapi serve``: the local Azure-compatible face-detection service."""

from __future__ import annotations

import click

from posterlab.cli.common import cli, wrap_errors


@cli.group()
def faceapi() -> None:
    """The local face-detection API service."""


@faceapi.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5005, show_default=True)
@click.option("--rate", default=None, metavar="N/s",
              help="Server-side quota (answers 429 with Retry-After beyond it), e.g. 10/s.")
@click.option("--burst", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--key", default=None, envvar="POSTERLAB_FACE_API_KEY",
              help="Require this Ocp-Apim-Subscription-Key (401 otherwise).")
@wrap_errors
def serve(host: str, port: int, rate: str | None, burst: int, key: str | None) -> None:
    """Serve the Azure Face detect protocol on the local detector.

    \b
    Examples:
      posterlab faceapi serve --port 5005
      posterlab faceapi serve --host 0.0.0.0 --rate 10/s --key secret
    Then: POSTERLAB_FACE_PROVIDER=http POSTERLAB_FACE_API_URL=http://127.0.0.1:5005
    """
    from posterlab.config import parse_rate
    from posterlab.faces.server import serve as run_server

    run_server(host, port, rate=parse_rate(rate, burst=burst) if rate else None, key=key)
