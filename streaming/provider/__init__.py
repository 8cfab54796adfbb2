"""The model provider: the process's one OpenAI client (`upstream`), the SSE reader under it (`sse`), and the
built-in demo model (`demo`), an in-process transport under that same client."""
