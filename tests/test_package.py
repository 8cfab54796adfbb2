"""The package installs into any Django project (issue 14's first "done when").

This builds the sdist and the wheel from the checkout (offline: `--no-isolation`, with the dev extras' `build` and
setuptools), installs the wheel into a fresh virtualenv outside the checkout, creates a stock `startproject host`,
adds the app exactly as the docs say and nothing more (`daphne`, `channels`, `streaming` in INSTALLED_APPS,
ASGI_APPLICATION, the in-memory CHANNEL_LAYERS, one `include()`, the canonical Channels `asgi.py`), migrates, and
serves it with daphne's `runserver` (the command daphne puts in place of Django's). Then it checks that the chat page
renders with its stylesheet and script, and that those (and a font the stylesheet names relatively) answer 200; that a
socket gets `ready` and the demo model streams to `done`; and that the exchange is in the host's database.

The static files are served by `runserver` itself, in the host's DEBUG, through the staticfiles finders: from the
installed package's directory, as a host sees them in development, with no line added for it.

The new virtualenv sees the dev virtualenv's installed dependencies through a `.pth` line naming its site-packages, so
no network is needed. A plain path line does not run that directory's own `.pth` files, so the checkout's editable
install stays out: the test checks that `streaming` is imported from the new virtualenv.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import sysconfig
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.live import ROOT, Process, free_port, wait_for_http

BUNDLE = ROOT / "streaming" / "static" / "streaming" / ".vite" / "manifest.json"
PROMPT = "Hello from the host project"
STREAM_SECONDS = 60

ASGI_PY = """import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")
# Initialize Django ASGI application early to ensure the AppRegistry
# is populated before importing code that may import ORM models.
django_asgi_app = get_asgi_application()

import streaming.routing

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(streaming.routing.websocket_urlpatterns))
        ),
    }
)
"""


@dataclass
class Host:
    """The host project, installed and running."""

    python: Path  # the fresh virtualenv's
    site: Path  # the project's directory, where manage.py is
    server: Process
    url: str
    opener: urllib.request.OpenerDirector  # a browser's: it keeps the session cookie
    cookies: CookieJar

    def get(self, path: str) -> tuple[int, str, bytes]:
        """The status, content type and body of a GET, an error status included."""
        try:
            response = self.opener.open(urllib.parse.urljoin(self.url, path), timeout=10)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            return response.status, response.headers.get_content_type(), response.read()

    def log(self) -> str:
        """The end of the server's output, for a failure's message."""
        return self.server.output()[-4000:]

    def manage(self, *args: str) -> str:
        return run(self.python, "manage.py", *args, cwd=self.site)


def run(*args: str | Path, cwd: Path) -> str:
    result = subprocess.run([str(arg) for arg in args], cwd=cwd, env=host_env(), capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def host_env() -> dict[str, str]:
    """A shell's environment in the host project: nothing of this checkout's (the suite's settings module, the
    reference project's variables, its virtualenv)."""
    ours = ("DJANGO_", "OPENAI_", "STREAMING_", "REDIS", "DATABASE_", "DEMO_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(key, None)
    return {**env, "PYTHONUNBUFFERED": "1"}


def build_wheel(outdir: Path) -> Path:
    """The sdist, then the wheel built from it (what `python -m build` does), offline."""
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", outdir, ROOT, cwd=ROOT)
    (wheel,) = outdir.glob("*.whl")
    return wheel


def fresh_virtualenv(path: Path, wheel: Path) -> Path:
    """A virtualenv with the wheel installed from the file alone; the dependencies are the dev virtualenv's."""
    # This virtualenv's pip installs into the new one (`--python`): seven seconds faster than ensurepip.
    run(sys.executable, "-m", "venv", "--without-pip", path, cwd=path.parent)
    python = path / "bin" / "python"
    install = ["-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel]
    run(sys.executable, *install, cwd=path.parent)
    site_packages = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=path).strip()
    dev_site_packages = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site_packages) / "dev-dependencies.pth").write_text("".join(f"{line}\n" for line in dev_site_packages))
    return python


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name} is not as startproject writes it: {old!r}"
    path.write_text(text.replace(old, new))


def add_the_app(site: Path) -> None:
    """The host's changes, exactly as the docs give them: three apps, two settings, one URL and the asgi.py."""
    settings = site / "host" / "settings.py"
    edit(settings, "INSTALLED_APPS = [\n", "INSTALLED_APPS = [\n    'daphne',\n")
    edit(
        settings,
        "'django.contrib.staticfiles',\n",
        "'django.contrib.staticfiles',\n    'channels',\n    'streaming',\n",
    )
    with settings.open("a") as end:
        end.write("\nASGI_APPLICATION = 'host.asgi.application'\n")
        end.write("CHANNEL_LAYERS = {'default': {'BACKEND': 'channels.layers.InMemoryChannelLayer'}}\n")
    urls = site / "host" / "urls.py"
    edit(urls, "from django.urls import path\n", "from django.urls import include, path\n")
    edit(
        urls,
        "path('admin/', admin.site.urls),\n",
        "path('admin/', admin.site.urls),\n    path('chat/', include('streaming.urls')),\n",
    )
    (site / "host" / "asgi.py").write_text(ASGI_PY)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """A stock Django project with the app installed from its wheel, served by daphne."""
    if not BUNDLE.exists():
        message = f"the frontend is not built ({BUNDLE} missing): the package was NOT tested; run `make test`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("package")
    python = fresh_virtualenv(tmp / "venv", build_wheel(tmp / "dist"))
    imported_from = run(python, "-c", "import streaming; print(streaming.__file__)", cwd=tmp).strip()
    assert Path(imported_from).is_relative_to(tmp / "venv"), f"streaming was imported from {imported_from}"

    run(python, "-m", "django", "startproject", "host", cwd=tmp)
    site = tmp / "host"
    add_the_app(site)
    run(python, "manage.py", "migrate", "--no-input", "-v0", cwd=site)

    port = free_port()
    server = Process(
        "host", [str(python), "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], host_env(), tmp, cwd=site
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/chat/healthz", server)
        cookies = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
        yield Host(python, site, server, f"http://127.0.0.1:{port}", opener, cookies)
    finally:
        server.stop()


def test_the_chat_page_renders_with_its_assets(host: Host):
    status, _type, body = host.get("/chat/")
    page = body.decode()
    assert status == 200 and 'id="chat-root"' in page and "chat-config" in page, host.log()
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    scripts = re.findall(r'<script type="module" src="([^"]+)"', page)
    assert len(stylesheets) == 1 and len(scripts) == 1, page
    assert all(url.startswith("/static/streaming/assets/") for url in stylesheets + scripts)

    status, content_type, css = host.get(stylesheets[0])
    assert (status, content_type) == (200, "text/css") and css
    status, content_type, js = host.get(scripts[0])
    assert status == 200 and "javascript" in content_type and js
    # The stylesheet names its fonts relatively (Vite's `base: './'`), so they are found under any STATIC_URL.
    font = re.search(rb"url\((\./[^)]+)\)", css)
    assert font, "the stylesheet names no font relatively"
    assert host.get(urllib.parse.urljoin(stylesheets[0], font.group(1).decode()))[0] == 200


def test_the_socket_streams_the_demo_model_into_the_hosts_database(host: Host):
    # A browser opens the page first: its session is the client the socket speaks for, at the path the page names.
    page = host.get("/chat/")[2].decode()
    config = json.loads(re.search(r'<script id="chat-config" type="application/json">(.*?)</script>', page)[1])
    session = next(cookie.value for cookie in host.cookies if cookie.name == "sessionid")

    frames = asyncio.run(prompt_over_the_socket(host.url.replace("http", "ws", 1) + config["socketPath"], session))

    assert frames[0]["type"] == "ready" and frames[-1]["type"] == "done", f"{frames}\n{host.log()}"
    answer = "".join(frame["text"] for frame in frames if frame["type"] == "delta")
    assert PROMPT in answer and "demo model" in answer
    rows = json.loads(host.manage("shell", "-v", "0", "-c", EXCHANGES))
    assert rows == [{"prompt": PROMPT, "answer": answer, "status": "completed", "demo": True}]


# What the host's database holds, asked through the host's own manage.py.
EXCHANGES = """
import json
from streaming.models import Exchange
print(json.dumps(list(Exchange.objects.values("prompt", "answer", "status", "demo"))))
"""


async def prompt_over_the_socket(ws_url: str, session: str) -> list[dict[str, Any]]:
    """Every frame from `ready` to the answer's end, the way the page sends its first prompt."""
    headers = {"Cookie": f"sessionid={session}"}
    async with websockets.connect(ws_url, origin="http://localhost", additional_headers=headers) as socket:
        frames = [json.loads(await asyncio.wait_for(socket.recv(), 10))]
        await socket.send(json.dumps({"type": "prompt", "request": "r1", "content": PROMPT}))
        async with asyncio.timeout(STREAM_SECONDS):
            while frames[-1]["type"] not in {"done", "error"}:
                frames.append(json.loads(await socket.recv()))
    return frames
