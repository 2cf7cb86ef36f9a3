"""A provider export larger than the portal's ordinary request limit (1 MiB) is uploaded whole,
through the page and the API (with an Idempotency-Key, whose body hash is taken as the file is
copied to disk): the path's own limit applies, and beyond it the answer is a 413 with nothing
kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from governance.models import User
from inventory.discovery.models import DiscoveryImport

API = "/api/v1/discovery/imports/"


def _export(people: int) -> bytes:
    """Google tokens.list pages, one per person, as JSON lines."""
    lines = []
    for number in range(people):
        token = {
            "kind": "admin#directory#token",
            "clientId": f"{number % 7}-notes.apps.googleusercontent.com",
            "displayText": f"Meeting notes {number % 7}",
            "scopes": ["https://www.googleapis.com/auth/drive.readonly"],
            "userKey": f"person{number}@example.com",
            "anonymous": False,
            "nativeApp": False,
        }
        lines.append(json.dumps({"kind": "admin#directory#tokenList", "items": [token]}))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def large_export(settings: Any) -> bytes:
    content = _export(6000)
    assert len(content) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return content


def _fields(content: bytes) -> dict[str, Any]:
    upload = SimpleUploadedFile("tokens.jsonl", content, content_type="application/json")
    return {"source": "google", "tenant": "example.com", "complete": "true", "file": upload}


def test_the_api_takes_an_export_over_the_request_limit_and_a_replay_queues_it_once(
    iam_admin: User, token_client: Callable[..., APIClient], large_export: bytes
) -> None:
    api = token_client(iam_admin)
    first = api.post(API, _fields(large_export), format="multipart", HTTP_IDEMPOTENCY_KEY="big-1")
    again = api.post(API, _fields(large_export), format="multipart", HTTP_IDEMPOTENCY_KEY="big-1")
    assert first.status_code == again.status_code == 202, first.content[:300]
    assert again["Idempotent-Replayed"] == "true"
    imp = DiscoveryImport.objects.get()
    assert imp.file_bytes == len(large_export)
    changed = api.post(API, _fields(large_export + b"\n"), format="multipart", HTTP_IDEMPOTENCY_KEY="big-1")
    assert changed.status_code == 422
    assert DiscoveryImport.objects.count() == 1


def test_the_upload_page_takes_an_export_over_the_request_limit(
    iam_admin: User, web_as: Callable[[User], Any], large_export: bytes
) -> None:
    client = web_as(iam_admin)
    response = client.post("/discovery/imports/", _fields(large_export))
    assert response.status_code in (200, 302), response.content[:500]
    assert DiscoveryImport.objects.get().file_bytes == len(large_export)


def test_beyond_the_upload_paths_own_limit_the_answer_is_413_and_nothing_is_kept(
    iam_admin: User, token_client: Callable[..., APIClient], large_export: bytes, settings: Any
) -> None:
    settings.REQUEST_UPLOAD_PATHS = {API: len(large_export) // 2}
    response = token_client(iam_admin).post(API, _fields(large_export), format="multipart")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/problem+json")
    assert not DiscoveryImport.objects.exists()


def test_other_paths_keep_the_ordinary_request_limit(
    iam_admin: User, token_client: Callable[..., APIClient], large_export: bytes
) -> None:
    response = token_client(iam_admin).post(
        "/api/v1/discovery/scope-mappings/", _fields(large_export), format="multipart"
    )
    assert response.status_code == 413
