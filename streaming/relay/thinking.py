"""Reasoning written inline in the answer text: a `<think>...</think>` block at the start of `content`.

Some servers send a reasoning model's thinking as part of its content (llama.cpp with `--reasoning-format none`,
some Qwen set-ups) instead of in a field of its own. Only a block at the very start of the content (after
whitespace) is reasoning: a `<think>` later on is part of the answer, as the model may be writing about the tag.
Chat templates that write `<think>` into the prompt themselves make the model's content start inside the block, so
that only a lone `</think>` shows where the thinking ends; such models are listed in `STREAMING_THINKING_MODELS`.

Pure: the generation feeds each upstream content piece to a `ThinkSplitter`, one per model response. A tag may be
split across pieces, so the splitter holds back the few characters that could begin one, and no more: everything
else leaves at once.
"""

from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


class ThinkSplitter:
    """Splits one response's content into (reasoning, answer text), piece by piece."""

    def __init__(self, *, inside: bool = False) -> None:
        # "start": deciding whether the content opens with a think block; "inside": in it; "after": the block just
        # closed (the whitespace that follows it is dropped); "answer": everything is answer text.
        self._state = "inside" if inside else "start"
        self._held = ""
        # Everything from here on is answer text, so a caller may skip `feed` (an attribute: read once per token).
        self.passes_through = False

    def feed(self, text: str) -> tuple[str, str]:
        """The reasoning and the answer text that `text` adds, once the tags around them are known."""
        if self._state == "answer":
            return "", text
        if self._state == "start":
            return self._start(text)
        if self._state == "inside":
            return self._inside(text)
        return self._after(text)

    def server_splits(self) -> None:
        """The server sends reasoning in a field of its own, so the content is the answer: a model listed as opening
        its think block in the template must not have its whole answer taken for reasoning."""
        if self._state == "inside" and not self._held:
            self._state = "start"

    def flush(self) -> tuple[str, str]:
        """The end of the content: what was held back is what it looked like it was."""
        held, self._held = self._held, ""
        if self._state == "inside":
            return held, ""
        return "", held if self._state == "start" else ""

    def _start(self, text: str) -> tuple[str, str]:
        held = self._held + text
        opening = held.lstrip()
        if opening.startswith(OPEN):
            self._state, self._held = "inside", ""
            return self._inside(opening[len(OPEN) :])
        if OPEN.startswith(opening):  # still could be the tag (or only whitespace so far)
            self._held = held
            return "", ""
        self._state, self._held, self.passes_through = "answer", "", True
        return "", held

    def _inside(self, text: str) -> tuple[str, str]:
        held = self._held + text
        end = held.find(CLOSE)
        if end >= 0:
            self._state, self._held = "after", ""
            _, answer = self._after(held[end + len(CLOSE) :])
            return held[:end], answer
        keep = _tag_prefix_at_end(held, CLOSE)
        self._held = held[len(held) - keep :] if keep else ""
        return held[: len(held) - keep], ""

    def _after(self, text: str) -> tuple[str, str]:
        answer = text.lstrip()
        if answer:
            self._state, self.passes_through = "answer", True
        return "", answer


def _tag_prefix_at_end(text: str, tag: str) -> int:
    """How many characters at the end of `text` could be the start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0
