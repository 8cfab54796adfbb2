"""How much of a conversation the model is sent: the newest whole turns that fit the history budget.

Pure: no Django, no database. `services.exchanges_start` calls `fit_history` with the turns it read; a retry after
the provider still answers `context_length_exceeded` calls `fewer_turns` on the messages it sent.

The budget is counted in characters, not tokens. Counting tokens needs the model's own tokenizer: a dependency, and
unknown for the models behind an OpenAI-compatible gateway. Characters are a conservative proxy that needs nothing:
English runs at about four characters per token, so 48,000 characters is about 12,000 tokens.

A turn is a user message and every message after it up to the next user message: the assistant's answer, and an
assistant message with `tool_calls` together with the `tool` messages that answer it. Turns are kept or dropped
whole, so the model never sees a tool result without its call (the API refuses that), nor an answer without its
question.
"""

from __future__ import annotations

import json

from openai.types.chat import ChatCompletionMessageParam

from streaming.errors import PromptTooLong

Message = ChatCompletionMessageParam


def fit_history(
    *, system: str | None, turns: list[Message], prompt: str, budget_chars: int, drop: int = 0
) -> list[Message]:
    """The messages to send the model: the system instruction, the newest turns that fit, and the new prompt.

    Together they stay within `budget_chars`. The oldest turns go first, and a turn that does not fit ends the
    history even if older, shorter ones would fit: a conversation with a gap in it reads as a different one. `drop`
    drops that many more of the oldest turns that would have been kept, for when the provider finds the messages
    too long after all (characters only estimate its tokens).

    Raises:
        PromptTooLong: the system instruction and the prompt alone are longer than `budget_chars`.
    """
    head: list[Message] = [{"role": "system", "content": system}] if system else []
    new: Message = {"role": "user", "content": prompt}
    left = budget_chars - sum(_chars(message) for message in [*head, new])
    if left < 0:
        raise PromptTooLong()
    kept: list[list[Message]] = []
    for turn in reversed(_turns(turns)):
        size = sum(_chars(message) for message in turn)
        if size > left:
            break
        kept.append(turn)
        left -= size
    kept.reverse()
    return [*head, *_flat(kept[drop:]), new]


def turn_count(messages: list[Message]) -> int:
    """How many earlier turns `messages`, as `fit_history` built them, hold: 0 means dropping more cannot help."""
    return len(_turns(messages[_history_start(messages) : -1]))


def fewer_turns(messages: list[Message], *, drop: int) -> list[Message]:
    """`messages`, as `fit_history` built them, without their `drop` oldest turns; system and prompt stay."""
    start = _history_start(messages)
    return [*messages[:start], *_flat(_turns(messages[start:-1])[drop:]), messages[-1]]


def _history_start(messages: list[Message]) -> int:
    """Where the earlier turns of a built message list begin: after the system instruction, if there is one."""
    return 1 if messages and messages[0]["role"] == "system" else 0


def _turns(messages: list[Message]) -> list[list[Message]]:
    turns: list[list[Message]] = []
    for message in messages:
        if message["role"] == "user" or not turns:
            turns.append([])
        turns[-1].append(message)
    return turns


def _flat(turns: list[list[Message]]) -> list[Message]:
    return [message for turn in turns for message in turn]


def _chars(message: Message) -> int:
    """What a message costs of the budget: its text, or its JSON when it holds more (tool calls, content parts)."""
    content = message.get("content")
    if isinstance(content, str) and message.keys() <= {"role", "content"}:
        return len(content)
    return len(json.dumps(message, ensure_ascii=False))
