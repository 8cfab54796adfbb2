"""`{% streaming_assets %}`: the chat page's stylesheets and scripts, as `<link>` and `<script type="module">` tags;
`{% streaming_assets "src/dashboard.js" %}` those of another entry of the bundle (the admin's dashboard).

The app ships its frontend built (`frontend/` is its source): Vite writes the bundle into the app's static files,
`streaming/static/streaming/`, with a manifest that maps the entry to its hashed files. This tag reads that manifest
from the package's own directory, so a host project needs no setting to find the bundle, and names each file through
`static()`, so the host's STATIC_URL and storage (ManifestStaticFilesStorage's hashes, say) apply. The manifest is
read once per process, or at every page in DEBUG, so a rebuild shows without a restart.

A checkout whose frontend was never built renders a message saying so in the page, and logs it, instead of failing.
With `STREAMING_VITE_DEV_SERVER` set (`npm run dev`), the page loads its modules from Vite's dev server instead.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from streaming.conf import app_settings

logger = logging.getLogger(__name__)
register = template.Library()

STATIC_DIR = "streaming/"  # the bundle's place among the static files
MANIFEST = Path(__file__).resolve().parent.parent / "static" / "streaming" / ".vite" / "manifest.json"
ENTRY = "src/main.jsx"  # as vite.config.js names it


class BundleMissing(Exception):
    """The built frontend is not where the app ships it, or its manifest does not name the entry."""


@dataclass(frozen=True)
class Bundle:
    """The files a page loads for the entry, as paths under STATIC_DIR, in the order the tags go in."""

    stylesheets: list[str]
    preloads: list[str]  # chunks the entry imports, fetched at once rather than when the entry asks for them
    script: str


def bundle_from_manifest(manifest: dict[str, Any], entry: str = ENTRY) -> Bundle:
    """The entry's script, the chunks it imports (transitively) and every stylesheet of them, from Vite's manifest."""
    stylesheets: list[str] = []
    preloads: list[str] = []

    def visit(name: str) -> None:
        chunk = manifest[name]
        for imported in chunk.get("imports", []):
            if manifest[imported]["file"] not in preloads:
                preloads.append(manifest[imported]["file"])
                visit(imported)
        stylesheets.extend(css for css in chunk.get("css", []) if css not in stylesheets)

    if entry not in manifest:
        raise BundleMissing(f"The frontend's manifest {MANIFEST} has no entry {entry}: rebuild the frontend.")
    visit(entry)
    return Bundle(stylesheets=stylesheets, preloads=preloads, script=manifest[entry]["file"])


@functools.cache
def _read_bundle(entry: str = ENTRY) -> Bundle:
    # functools.cache keeps no exception: a bundle built after a page said it was missing is found by the next page.
    try:
        manifest = json.loads(MANIFEST.read_text())
    except FileNotFoundError:
        raise BundleMissing(
            f"The chat's frontend is not built: {MANIFEST} is missing. In a checkout of the project run `make` "
            "(or `cd frontend && npm ci && npm run build`); an installed package that lacks it was built before that."
        ) from None
    except ValueError as exc:
        raise BundleMissing(f"The frontend's manifest {MANIFEST} is not valid JSON ({exc}): rebuild it.") from None
    return bundle_from_manifest(manifest, entry)


def built_bundle(entry: str = ENTRY) -> Bundle:
    """The entry's bundle as the manifest names it; read again at every call in DEBUG, where a rebuild must show."""
    if settings.DEBUG:
        _read_bundle.cache_clear()
    return _read_bundle(entry)


@register.simple_tag
def streaming_assets(entry: str = ENTRY) -> SafeString:
    """The tags that load an entry of the frontend (the chat's by default), for the page's `<head>`; or, when it is
    not built, a message."""
    if app_settings.VITE_DEV_SERVER:
        return dev_server_tags(app_settings.VITE_DEV_SERVER.rstrip("/"), entry)
    try:
        bundle = built_bundle(entry)
    except BundleMissing as missing:
        logger.error("%s", missing)
        return format_html('<p class="bundle-missing" role="alert">{}</p>', str(missing))
    tags = [format_html('<link rel="stylesheet" href="{}">', static(STATIC_DIR + css)) for css in bundle.stylesheets]
    tags += [format_html('<link rel="modulepreload" href="{}">', static(STATIC_DIR + js)) for js in bundle.preloads]
    tags.append(format_html('<script type="module" src="{}"></script>', static(STATIC_DIR + bundle.script)))
    return mark_safe("\n".join(tags))  # each tag is escaped by format_html


def dev_server_tags(origin: str, entry: str = ENTRY) -> SafeString:
    """Vite's client, the React refresh preamble that @vitejs/plugin-react expects before any component, and the
    entry's source, all from the dev server (Vite itself adds the stylesheets the modules import)."""
    runtime = json.dumps(f"{origin}/@react-refresh").replace("<", "\\u003c")  # a JS string that cannot end the tag
    preamble = (
        f"import {{ injectIntoGlobalHook }} from {runtime};\n"
        "injectIntoGlobalHook(window);\n"
        "window.$RefreshReg$ = () => {};\n"
        "window.$RefreshSig$ = () => (type) => type;"
    )
    # The one outside value, the origin, is escaped: as a JSON string in the script, by format_html in attributes.
    return mark_safe(
        f'<script type="module">\n{preamble}\n</script>\n'
        + format_html('<script type="module" src="{}/@vite/client"></script>\n', origin)
        + format_html('<script type="module" src="{}/{}"></script>', origin, entry)
    )
