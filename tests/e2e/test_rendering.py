"""How the page renders answers: scrolling while one streams, math, hostile output, and a very long answer.

The scrolling tests watch the demo model stream. The long answer comes from the fake provider (`tests.fake_openai`,
the real HTTP server the Python tests use), run on an event loop of its own thread (Playwright's sync API owns this
thread's), behind a second daphne of this module: the page, the socket, the relay and the model client are the real
ones, only the model is scripted. Its answer is 150 KB in one code block, after a Thinking section and a tool card.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e import chat
from tests.e2e.chat import answer, open_chat
from tests.e2e.chat import send_with_button as send
from tests.e2e.conftest import DESKTOP, PHONE, open_page, scripted_daphne
from tests.fake_openai import Script, ToolCallScript
from tests.live import Daphne, FakeOpenAIThread

pytestmark = pytest.mark.e2e

T = TypeVar("T")

ANSWER_TIMEOUT_MS = 60_000
WHEEL_STEPS = 6
WHEEL_STEP_PX = 40
# Where the animation-frame gaps of the long answer are written: timing is recorded here and in
# docs/performance.md, never asserted (a shared CI machine would make such a test fail for the machine's reasons).
FRAME_GAPS = Path(__file__).resolve().parents[2] / "test-artifacts" / "frame-gaps.txt"
LONG_ANSWER_CHARS = 150_000

# Runs before the page's scripts: the gap between consecutive animation frames, kept while an answer streams (and
# for the frames right after, which render the finished block), so the test reads how smooth the page stayed.
MEASURE_FRAMES = """(() => {
  window.__frames = [];
  let last = null;
  let tail = 0;
  const tick = (now) => {
    const streaming = document.querySelector('[data-testid="message-assistant"][data-status="streaming"]');
    if (streaming) tail = 30;
    if (last !== null && (streaming || tail > 0)) {
      window.__frames.push(now - last);
      if (!streaming) tail -= 1;
    }
    last = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""


def wait_until_completed(page: Page, index: int) -> None:
    chat.wait_until_completed(page, index, timeout=ANSWER_TIMEOUT_MS)  # a long answer takes longer


def distance_from_bottom(page: Page) -> float:
    return page.get_by_role("region", name="Conversation").evaluate(
        "(element) => element.scrollHeight - element.scrollTop - element.clientHeight"
    )


def expect_at_bottom(page: Page) -> None:
    """The view reaches the bottom: the library scrolls on the frame after the content grew, not in the same one."""
    page.wait_for_function(
        """() => {
          const view = document.querySelector('[aria-label="Conversation"]');
          return view.scrollHeight - view.scrollTop - view.clientHeight < 5;
        }""",
        timeout=5_000,
    )


def scroll_top(page: Page) -> float:
    return page.get_by_role("region", name="Conversation").evaluate("(element) => element.scrollTop")


# Scrolling


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_scrolling_up_while_an_answer_streams_stays_put_and_jump_to_latest_follows_again(
    browser: Browser, server: Daphne, request: pytest.FixtureRequest, device: str
) -> None:
    page = next(open_page(browser, server, request, DESKTOP if device == "desktop" else PHONE))
    try:
        open_chat(page)
        if device == "desktop":  # one answer fits a desktop's view: a finished one first, so the next overflows
            send(page, "How does this chat stream its answers?")
            wait_until_completed(page, 0)
        send(page, "And how do I use a real model instead?")
        streaming = answer(page, 1 if device == "desktop" else 0)
        expect(streaming).to_have_attribute("data-status", "streaming")
        jump = page.get_by_role("button", name="Jump to latest")
        # Pinned while the person is at the bottom: the view follows the growing answer.
        page.wait_for_function(
            """() => {
              const view = document.querySelector('[aria-label="Conversation"]');
              return view.scrollHeight > view.clientHeight + 300;
            }""",
            timeout=ANSWER_TIMEOUT_MS,
        )
        expect_at_bottom(page)
        expect(jump).to_be_hidden()

        box = page.get_by_role("region", name="Conversation").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(WHEEL_STEPS):
            page.mouse.wheel(0, -WHEEL_STEP_PX)
            page.wait_for_timeout(16)  # a trackpad's steps come a frame apart
        expect(jump).to_be_visible()
        left_at = scroll_top(page)
        # The answer goes on growing below; the view stays where the person left it.
        grown = streaming.evaluate("(element) => element.offsetHeight")
        page.wait_for_function(
            "(height) => document.querySelectorAll('[data-testid=message-assistant]')"
            "[document.querySelectorAll('[data-testid=message-assistant]').length - 1].offsetHeight > height + 40",
            arg=grown,
            timeout=ANSWER_TIMEOUT_MS,
        )
        assert abs(scroll_top(page) - left_at) < 1, "the view was pulled back down"
        assert distance_from_bottom(page) > WHEEL_STEPS * WHEEL_STEP_PX / 2

        jump.click()
        expect(jump).to_be_hidden()
        expect_at_bottom(page)
        if streaming.get_attribute("data-status") == "streaming":  # pinned again: it follows what comes next
            before = streaming.evaluate("(element) => element.offsetHeight")
            page.wait_for_function(
                "(height) => { const answers = document.querySelectorAll('[data-testid=message-assistant]');"
                " const last = answers[answers.length - 1];"
                " return last.dataset.status !== 'streaming' || last.offsetHeight > height + 20; }",
                arg=before,
                timeout=ANSWER_TIMEOUT_MS,
            )
            expect_at_bottom(page)
    finally:
        page.context.close()


# A long answer, from the fake provider


@pytest.fixture(scope="module")
def scripted_server(tmp_path_factory: pytest.TempPathFactory, upstream: FakeOpenAIThread) -> Iterator[Daphne]:
    """A daphne whose model is the fake provider, offered the built-in tools."""
    with scripted_daphne(
        tmp_path_factory, "scripted", upstream, STREAMING_TOOL_MODELS="*", STREAMING_BUSY_MS="60000"
    ) as daphne:
        yield daphne


def long_code(chars: int) -> list[str]:
    """Lines of Python, about `chars` characters in all, each ending in a line break."""
    lines: list[str] = []
    total = 0
    index = 0
    while total < chars:
        line = f"    total_{index:05d} = accumulate(values[{index}], factor={index % 97}, offset={index * 7})\n"
        lines.append(line)
        total += len(line)
        index += 1
    return lines


def long_answer_scripts() -> tuple[Script, Script]:
    """A round that thinks and calls `current_time`, then one that thinks and writes the long code block."""
    thinking = [f"Thinking step {i} about the request. " for i in range(40)]
    call = Script(server="deepseek", reasoning=thinking, tool_calls=[ToolCallScript("current_time")], interval=0.01)
    tokens = ["Here is the whole file:\n\n", "```python\n", "def run(values):\n"]
    tokens += long_code(LONG_ANSWER_CHARS)
    tokens += ["    return total\n", "```\n\n", "That is all of it."]
    code = Script(server="deepseek", reasoning=thinking, tokens=tokens, interval=0.003)
    return call, code


def test_a_150_kb_code_block_after_reasoning_and_a_tool_card_streams_whole_and_its_frame_gaps_are_recorded(
    browser: Browser, scripted_server: Daphne, upstream: FakeOpenAIThread, request: pytest.FixtureRequest
) -> None:
    page = next(open_page(browser, scripted_server, request, DESKTOP))
    try:
        page.add_init_script(MEASURE_FRAMES)
        open_chat(page)
        upstream.then(*long_answer_scripts())
        send(page, "Write the whole file, please.")
        reply = answer(page, 0)
        expect(reply.get_by_test_id("tool-call")).to_have_attribute("data-status", "done", timeout=ANSWER_TIMEOUT_MS)
        wait_until_completed(page, 0)
        code = reply.locator(".code-block code")
        expect(code).to_have_count(1)
        assert len(code.text_content()) > LONG_ANSWER_CHARS
        expect(reply.get_by_test_id("thinking")).to_have_count(2)
        page.wait_for_timeout(600)  # the frames after the end, which render the finished block

        frames = page.evaluate("window.__frames")
        assert len(frames) > 100, f"too few frames measured: {len(frames)}"
        ordered = sorted(frames)
        summary = (
            f"{len(frames)} frames: median {statistics.median(frames):.1f} ms, "
            f"p99 {ordered[int(len(ordered) * 0.99)]:.1f} ms, max {ordered[-1]:.1f} ms"
        )
        FRAME_GAPS.parent.mkdir(exist_ok=True)
        FRAME_GAPS.write_text(f"long answer (150 KB code block), animation-frame gaps: {summary}\n")
        print(f"\nlong answer, animation-frame gaps: {summary}")
    finally:
        page.context.close()


# Math, and what a model that read hostile text may write


HOSTILE_ANSWER = [
    "Energy: $E = mc^2$, and in full:\n\n",
    "$$\n\\int_0^1 x^2 \\, dx = \\frac{1}{3}\n$$\n\n",
    'Raw HTML stays text: <img src="x" onerror="window.__pwned = true"> ',
    "<script>window.__pwned = true</script>\n\n",
    "[a real link](https://example.com/docs) and [a trap](javascript:window.__pwned=true)\n\n",
    "![a tracking pixel](http://127.0.0.1:9/pixel.png)\n\n",
    "$\\href{javascript:window.__pwned=true}{click}$",
]


def test_math_renders_and_hostile_markup_links_and_images_in_an_answer_stay_inert(
    browser: Browser, scripted_server: Daphne, upstream: FakeOpenAIThread, request: pytest.FixtureRequest
) -> None:
    page = next(open_page(browser, scripted_server, request, DESKTOP))
    try:
        pixel_requests: list[str] = []
        page.on("request", lambda r: pixel_requests.append(r.url) if "pixel.png" in r.url else None)
        open_chat(page)
        upstream.then(Script(tokens=HOSTILE_ANSWER))
        send(page, "Show me some maths.")
        wait_until_completed(page, 0)
        reply = answer(page, 0).get_by_test_id("answer-text")

        expect(reply.locator(".katex").first).to_be_visible()
        expect(reply.locator(".katex-display")).to_have_count(1)
        expect(reply).to_contain_text('<img src="x" onerror="window.__pwned = true">')
        assert reply.locator("img, script").count() == 0
        real = reply.get_by_role("link", name="a real link")
        expect(real).to_have_attribute("rel", "noopener noreferrer nofollow")
        assert all(
            not (link.get_attribute("href") or "").lower().startswith("javascript:")
            for link in reply.locator("a").all()
        )
        expect(reply.get_by_role("link", name="a tracking pixel")).to_have_count(1)  # shown as a link, not loaded
        assert pixel_requests == []
        assert page.evaluate("window.__pwned === undefined")
    finally:
        page.context.close()
