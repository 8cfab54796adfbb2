"""The host hooks the benchmark's workers run, so that everything that happens before a prompt goes upstream is
measured with it: who may chat, the tools a client is offered, its budget, a pinned system instruction. Each does
what a real host's would (a lookup, a rule) without making the benchmark about the host's own code."""

from __future__ import annotations

from typing import Any

from streaming.budgets import Budget
from streaming.clients import Client, default_client

SYSTEM = "You are the benchmark's model. Answer as the prompt says."


def client(*, user: Any, session: Any) -> Client | None:
    return default_client(user=user, session=session)


def offered_tools(*, client: Client, tools: list[Any]) -> list[Any]:
    return [tool for tool in tools if not tool.name.startswith("admin_")]


def budget(*, client: Client) -> Budget:
    """Limits every client has, set high enough that none is reached: the checks run, the prompts go. (All the
    benchmark's clients ask from one address, which the budget of anonymous clients also counts.)"""
    return Budget(prompts_per_minute=100_000, tokens_per_day=10**12)


def system_instruction(*, client: Client, conversation: Any) -> str:
    return SYSTEM
