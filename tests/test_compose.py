"""docker-compose.yml, checked by parsing (no Docker engine runs here)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml

from posterlab.cli import _register, cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _command(argv: list[str]) -> click.Command:
    _register()
    ctx = click.Context(cli)
    command: click.Command = cli
    rest = list(argv)
    while isinstance(command, click.Group) and rest:
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"unknown posterlab command {rest[0]!r} in {argv}"
        command, rest = sub, rest[1:]
    return command


def test_compose_has_every_service_of_the_design(compose: dict) -> None:
    services = compose["services"]
    for name in ("redis", "postgres", "migrate", "faceapi", "worker-fetch", "worker-extract",
                 "worker-faces", "worker-analysis", "flower"):
        assert name in services, name
    assert services["flower"]["profiles"] == ["monitoring"]
    assert "--appendonly" in services["redis"]["command"]  # the broker keeps its queue


def test_every_posterlab_command_in_compose_exists_with_its_options(compose: dict) -> None:
    for name, service in compose["services"].items():
        if service.get("image") != "posterlab:latest":
            continue
        argv = service["command"]
        command = _command([a for a in argv if not a.startswith("-")][:2])
        options = {opt for p in command.params for opt in getattr(p, "opts", [])}
        options |= {"--help"}
        for arg in argv:
            if arg.startswith("--"):
                assert arg in options, f"{name}: {arg} is not an option of {argv[:2]}"


def test_workers_consume_one_queue_each_and_wait_for_healthy_services(compose: dict) -> None:
    services = compose["services"]
    for queue in ("fetch", "extract", "faces", "analysis"):
        service = services[f"worker-{queue}"]
        argv = service["command"]
        assert argv[argv.index("--queues") + 1] == queue
        deps = service["depends_on"]
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in service
        assert "blobs:/data/blobs" in service["volumes"]
    assert "--concurrency" not in services["worker-extract"]["command"]  # = cores


def test_compose_environment_uses_only_known_settings(compose: dict) -> None:
    known = {"POSTERLAB_DATABASE_URL", "POSTERLAB_BROKER_URL", "POSTERLAB_BLOB_DIR",
             "POSTERLAB_FACE_PROVIDER", "POSTERLAB_FACE_API_URL", "POSTERLAB_FACE_API_KEY",
             "POSTERLAB_FACE_API_RATE", "POSTERLAB_FETCH_ALLOW"}
    for service in compose["services"].values():
        for key in service.get("environment", {}) or {}:
            if key.startswith("POSTERLAB_"):
                assert key in known, key
    for name in ("redis", "postgres", "faceapi"):
        assert "healthcheck" in compose["services"][name], name


def test_fetch_workers_see_the_manifests_folder_where_the_producer_does(compose: dict) -> None:
    services = compose["services"]
    mount = "./manifests:/manifests:ro"
    assert mount in services["producer"]["volumes"]
    assert mount in services["worker-fetch"]["volumes"]
