"""The page's templates and `{% streaming_assets %}`: a host overrides the templates the usual way; the tag names the
bundle's files from its manifest under any STATIC_URL, says in the page when the bundle is missing, and loads from
Vite's dev server when one is named."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.template import Context, Template
from django.urls import reverse

from streaming.templatetags import streaming_assets
from streaming.templatetags.streaming_assets import Bundle, bundle_from_manifest

MANIFEST = {
    "src/main.jsx": {
        "file": "assets/main-abc.js",
        "isEntry": True,
        "imports": ["_vendor-def.js"],
        "css": ["assets/main-abc.css"],
    },
    "_vendor-def.js": {"file": "assets/vendor-def.js", "css": ["assets/vendor-def.css"]},
}


def render() -> str:
    return Template("{% load streaming_assets %}{% streaming_assets %}").render(Context())


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A manifest of the test's own, in place of the built one; the cache forgets it afterwards."""
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(MANIFEST))
    monkeypatch.setattr(streaming_assets, "MANIFEST", path)
    streaming_assets._read_bundle.cache_clear()
    yield path
    streaming_assets._read_bundle.cache_clear()


def test_the_entry_brings_its_imports_and_every_stylesheet_in_order():
    assert bundle_from_manifest(MANIFEST) == Bundle(
        stylesheets=["assets/vendor-def.css", "assets/main-abc.css"],
        preloads=["assets/vendor-def.js"],
        script="assets/main-abc.js",
    )


def test_the_tags_name_the_files_through_static_under_the_hosts_static_url(manifest, settings):
    settings.STATIC_URL = "/assets/"
    assert render().splitlines() == [
        '<link rel="stylesheet" href="/assets/streaming/assets/vendor-def.css">',
        '<link rel="stylesheet" href="/assets/streaming/assets/main-abc.css">',
        '<link rel="modulepreload" href="/assets/streaming/assets/vendor-def.js">',
        '<script type="module" src="/assets/streaming/assets/main-abc.js"></script>',
    ]


def test_the_manifest_is_read_once_outside_debug_and_at_every_page_in_debug(manifest, settings):
    settings.DEBUG = False
    render()
    manifest.write_text(json.dumps({"src/main.jsx": {"file": "assets/main-new.js"}}))
    assert "main-abc.js" in render()
    settings.DEBUG = True
    assert "main-new.js" in render()


@pytest.mark.django_db
def test_a_missing_bundle_is_said_in_the_page_and_logged(manifest, client, caplog):
    manifest.unlink()
    with caplog.at_level(logging.ERROR, logger="streaming.templatetags.streaming_assets"):
        page = client.get(reverse("streaming:chat"))
    assert page.status_code == 200
    assert 'class="bundle-missing" role="alert"' in page.content.decode() and "npm run build" in page.content.decode()
    assert "is not built" in caplog.text


def test_a_manifest_without_the_entry_is_said_too(manifest):
    manifest.write_text("{}")
    assert "has no entry src/main.jsx" in render()


def test_the_dev_server_serves_the_modules_when_it_is_named(manifest, settings):
    settings.STREAMING_VITE_DEV_SERVER = "http://localhost:5173/"
    tags = render()
    assert 'from "http://localhost:5173/@react-refresh";' in tags
    assert '<script type="module" src="http://localhost:5173/@vite/client"></script>' in tags
    assert tags.endswith('<script type="module" src="http://localhost:5173/src/main.jsx"></script>')
    assert "/static/" not in tags


@pytest.mark.django_db
def test_a_host_overrides_the_chat_page_from_its_own_templates(client, settings, tmp_path):
    (tmp_path / "streaming").mkdir()
    (tmp_path / "streaming" / "chat.html").write_text(
        '{% extends "streaming/base.html" %}{% block content %}<h1>My product</h1>{% endblock %}'
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    page = client.get(reverse("streaming:chat")).content.decode()
    assert "<h1>My product</h1>" in page and "/static/streaming/assets/" in page


def test_another_entry_is_named_by_its_argument_and_shares_the_chunks(manifest, settings):
    manifest.write_text(
        json.dumps({**MANIFEST, "src/dashboard.js": {"file": "assets/dashboard-xyz.js", "imports": ["_vendor-def.js"]}})
    )
    tags = Template('{% load streaming_assets %}{% streaming_assets "src/dashboard.js" %}').render(Context())
    assert tags.splitlines() == [
        '<link rel="stylesheet" href="/static/streaming/assets/vendor-def.css">',
        '<link rel="modulepreload" href="/static/streaming/assets/vendor-def.js">',
        '<script type="module" src="/static/streaming/assets/dashboard-xyz.js"></script>',
    ]
    assert "main-abc.js" in render()  # the default entry is still the chat's
    settings.STREAMING_VITE_DEV_SERVER = "http://localhost:5173"
    tags = Template('{% load streaming_assets %}{% streaming_assets "src/dashboard.js" %}').render(Context())
    assert tags.endswith('<script type="module" src="http://localhost:5173/src/dashboard.js"></script>')
