"""The relay's core: one answer, from the model's chunks to the protocol's frames, and the record it leaves.

- `generation`: runs one answer as a task of its own, in rounds when the model calls tools.
- `outbox`: coalesces what the model writes while the previous frame is on its way.
- `thinking`, `tool_calls`, `tool_outcome`: what models write besides text (reasoning; tool calls assembled from
  fragments, and how each call ended).
- `history`: which earlier turns fit the history budget.
- `transcript`, `ending`, `timing`: the stream's compact record, how it ended, and the times it reports.
- `handover`: what a worker keeps so that another can go on with its answer, and how that one goes on.

Mostly pure: `generation` is the one module here that does I/O.
"""
