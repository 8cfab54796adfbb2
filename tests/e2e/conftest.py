"""End-to-end fixtures: one real daphne server with the demo model, one headless Chromium, a fresh context per test.

The server runs as its own process, the way a deployment runs it (`tests/live.py`); the browser is Debian's
Chromium driven through Playwright's sync API. Playwright's sync API marks its own event loop as running between
calls, so nothing async may run while a browser is open: the suite's async `fresh_layer` fixture is replaced here
(these tests share no in-process channel layer with the server anyway), and the browser is closed at the end of
the module, before other modules' async tests run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, WebSocket, sync_playwright

from tests.live import Daphne, FakeOpenAIThread, drop_live_database, live_database_url, migrate, server_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Slow enough that an answer takes a few seconds: it can be watched growing, and stopped half-way.
DEMO_TOKENS_PER_SECOND = "40"
VIEWPORT = {"width": 1280, "height": 800}
DESKTOP = {"viewport": VIEWPORT}
# A phone of today's common size: its pointer is a finger (coarse, no hover), and the page lays out for a phone.
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}
DEVICES = {"desktop": DESKTOP, "phone": PHONE}
SERVER_LOG_LINES = 200
DELTA = re.compile(r'"type":\s*"delta"')


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


@pytest.fixture(scope="session", autouse=True)
def chromium_executable() -> Path:
    """Skip loudly without Chromium on a laptop; in CI a missing browser is a failure, never a silent skip."""
    if not CHROMIUM.exists():
        if running_in_ci():
            pytest.fail(f"Chromium not found at {CHROMIUM}: e2e tests cannot run in CI; apt-get install chromium")
        pytest.skip(f"Chromium not found at {CHROMIUM}: e2e tests NOT run; apt-get install chromium")
    return CHROMIUM


def without_markup(text: str) -> str:
    """Rendered text minus whitespace and the markdown markers that show only while a span is still unclosed.

    While `**demo` streams it renders literally; once `model**` arrives it becomes bold "demo model" and the
    asterisks vanish from the text. Likewise for backticks, and the line breaks between list items move.
    """
    return re.sub(r"[\s*`]", "", text)


@pytest.fixture(autouse=True)
def fresh_layer() -> None:
    """Replaces the suite's async fixture of the same name: the server process has its own channel layer."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daphne]:
    """A daphne process in debug mode (the app's static files served where they are, no login) answering with the demo
    model."""
    workdir = tmp_path_factory.mktemp("e2e")
    database_url = live_database_url(workdir)
    env = server_env(DJANGO_DEBUG="1", DATABASE_URL=database_url, DEMO_TOKENS_PER_SECOND=DEMO_TOKENS_PER_SECOND)
    try:
        migrate(env)
        daphne = Daphne("daphne-e2e", env, workdir)
        try:
            yield daphne
        finally:
            daphne.stop()
    finally:
        drop_live_database(database_url)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAIThread]:
    """The fake provider (`tests.fake_openai`) on a thread of its own, for a module whose server it answers."""
    upstream = FakeOpenAIThread()
    yield upstream
    upstream.stop()


@contextmanager
def scripted_daphne(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    upstream: FakeOpenAIThread,
    *,
    prepare: Callable[[dict[str, str]], None] | None = None,
    **settings: str,
) -> Iterator[Daphne]:
    """A daphne in debug mode, with a database of its own, whose model is the fake provider `upstream`.

    `settings` add to or override its environment; `prepare` runs with that environment after the migrations,
    before the server starts (to create a user, say).
    """
    workdir = tmp_path_factory.mktemp(f"e2e-{name}")
    database_url = live_database_url(workdir, name=name)
    env = server_env(
        **{
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": database_url,
            "OPENAI_API_KEY": "sk-e2e-test",
            "OPENAI_BASE_URL": upstream.fake.base_url,
            "OPENAI_MODEL": "fake-model",
            "OPENAI_MAX_RETRIES": "0",
            **settings,
        }
    )
    try:
        migrate(env)
        if prepare is not None:
            prepare(env)
        daphne = Daphne(f"daphne-e2e-{name}", env, workdir)
        try:
            yield daphne
        finally:
            daphne.stop()
    finally:
        drop_live_database(database_url)


@pytest.fixture(scope="module")
def playwright(chromium_executable: Path) -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium_executable: Path) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(chromium_executable), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser, server: Daphne, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context: no cookies, so a new session and a new client of the chat."""
    yield from open_page(browser, server, request, DESKTOP)


@pytest.fixture
def phone_page(browser: Browser, server: Daphne, request: pytest.FixtureRequest) -> Iterator[Page]:
    """Like `page`, on a phone: a narrow viewport, a touch screen, a mobile browser's layout viewport."""
    yield from open_page(browser, server, request, PHONE)


@pytest.fixture(params=["desktop", "phone"])
def device_page(browser: Browser, server: Daphne, request: pytest.FixtureRequest) -> Iterator[Page]:
    """`page` and `phone_page` in turn: for what must work at both sizes."""
    yield from open_page(browser, server, request, DEVICES[request.param])


def open_page(browser: Browser, server: Daphne, request: pytest.FixtureRequest, device: dict) -> Iterator[Page]:
    """A page of `server` in a fresh context with the device's viewport (and touch), its errors and frames logged."""
    context = browser.new_context(base_url=server.url, color_scheme="light", locale="en-US", **device)
    context.set_default_timeout(10_000)
    page = context.new_page()
    log: list[str] = []
    page.on("pageerror", lambda error: log.append(f"{datetime.now():%H:%M:%S.%f} page error: {error}"))
    page.on("console", lambda message: message.type == "error" and log.append(f"console: {message.text}"))
    page.on("websocket", lambda socket: record_frames(socket, log))
    request.node.stash[BROWSER_LOG] = log
    yield page
    context.close()


BROWSER_LOG = pytest.StashKey[list[str]]()


def record_frames(socket: WebSocket, log: list[str]) -> None:
    """Keeps the frames the page sent and the ones it got, except deltas (too many to be worth reading)."""

    def note(what: str) -> None:
        log.append(f"{datetime.now():%H:%M:%S.%f} {what}")

    note(f"websocket opened: {socket.url}")
    socket.on("framesent", lambda payload: note(f"sent: {payload!s}"))
    socket.on("framereceived", lambda payload: DELTA.search(str(payload)) or note(f"received: {payload!s}"))
    socket.on("close", lambda _socket: note("websocket closed"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing e2e test shows the server's log, the browser's errors and what went over the socket."""
    report = yield
    if report.failed:
        server = getattr(item, "funcargs", {}).get("server")
        if isinstance(server, Daphne):
            lines = server.output().splitlines()[-SERVER_LOG_LINES:]
            report.sections.append((f"daphne output (last {SERVER_LOG_LINES} lines)", "\n".join(lines)))
        log = item.stash.get(BROWSER_LOG, [])
        if log:
            report.sections.append(("browser: errors and websocket frames (deltas left out)", "\n".join(log)))
    return report
