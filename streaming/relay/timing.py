"""The times a stream reports, defined once: the `done` frame, the log and the metrics all use these.

- time to first token (`ttft_ms`): from accepting the prompt to the first piece of answer text;
- time to first output (`first_output_ms`): to the first output of any kind (reasoning, a tool call, or text),
  which is what a person waiting on a reasoning model sees first;
- duration (`duration_ms`): to the end of the stream.

Each is in milliseconds on the monotonic clock, taken when the piece is read from the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Timing:
    started: float
    first_output: float | None = None
    first_text: float | None = None
    # Whether this process saw the stream from its start. One taken over from another worker (`relay.handover`) did
    # not: its first words came from there, so it reports no time to them.
    from_start: bool = True

    def output(self, *, text: bool) -> None:
        """Something was read from the model: answer text, or another kind of output."""
        if self.first_output is None:
            self.first_output = time.monotonic()
        if text and self.first_text is None:
            self.first_text = time.monotonic()

    def ttft_ms(self) -> int | None:
        return self._since_start(self.first_text)

    def first_output_ms(self) -> int | None:
        return self._since_start(self.first_output)

    def duration_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)

    def _since_start(self, moment: float | None) -> int | None:
        return None if moment is None or not self.from_start else round((moment - self.started) * 1000)
