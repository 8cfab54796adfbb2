"""Run daphne on uvloop: `python -m chatproject.server [daphne's options] chatproject.asgi:application`.

Daphne builds its event loop when it is imported, from the loop policy in force; setting uvloop's policy first is all
it takes. The relay spends much of its time in the event loop itself (see docs/performance.md), which uvloop runs
faster. Every option is daphne's own.
"""

import asyncio

import uvloop


def main() -> None:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from daphne.cli import CommandLineInterface  # imported only now: it creates the loop at import

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
