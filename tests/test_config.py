"""Credentials hidden in every URL form, and every other URL shown exactly as given."""

from __future__ import annotations

import pytest

from posterlab.config import redact_text, redact_url


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:secret@host:6379/0", "redis://:***@host:6379/0"),
    ("postgresql://u:pw@db:5432/x", "postgresql://u:***@db:5432/x"),
    ("postgresql://u@db/x?sslmode=require&password=pw&api_key=k",
     "postgresql://u@db/x?sslmode=require&password=***&api_key=***"),
    ("https://api.example/detect?token=t&size=2", "https://api.example/detect?token=***&size=2"),
])
def test_every_credential_form_in_a_url_is_hidden(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("url", [
    "sqlite:////var/lib/posterlab/posterlab.db",  # absolute: four slashes
    "sqlite:///posterlab.db",  # relative
    "sqlite://",
    "postgresql://postgres@127.0.0.1:5432/posterlab",
    "redis://127.0.0.1:6379/0",
])
def test_a_url_without_credentials_is_shown_exactly_as_given(url: str) -> None:
    assert redact_url(url) == url
    assert redact_text(f"database: {url}") == f"database: {url}"
