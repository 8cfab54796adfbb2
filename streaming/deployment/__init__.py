"""The app as one worker of a deployment: what several daphne processes need to serve one conversation.

- `worker`: this process's duties (heartbeat, the sweep of dead workers' streams, relayed cancels, the drain).
- `running`: the streams this process runs.
- `takeover`: going on here with the answer of a worker that died or drained (`STREAMING_TAKEOVER`).
- `shared`: the state workers share (each stream's record, presence, liveness), in Redis or in memory.
- `publish`, `batching`: a stream's frames kept in its record and published, many in one Redis pipeline.
- `redis_layer`, `layers`: the channel layers (Redis pub/sub; in memory for one process).
- `reactor`: the Twisted reactor `chatproject.server` runs daphne on, which writes without asking epoll first.
- `dispatch`: how a socket's consumer takes its messages, two turns of the loop sooner than Channels' own loop.
- `lag`: how late the event loop runs, which tells when the worker is overloaded.
- `together`: work that arrives while the database is busy goes to it together (prompts, ends).
- `metrics`: what the worker reports to Prometheus (`/metrics`), summed over a host's workers in multi-process mode.
"""
