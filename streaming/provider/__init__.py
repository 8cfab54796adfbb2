"""The model provider: the process's one OpenAI client (`upstream`), its pool of connections (`transport`), the
streamed request sent straight on it (`direct`), the SSE reader under it (`sse`), the Responses API's request and
events (`responses`), what a chunk or event contributes (`pieces`), and the built-in demo model (`demo`), an
in-process transport under that same client."""
