"""Tools: the host project's own Python functions, which a model may call while it answers.

```python
from streaming.tools import Caller, ToolError, tool

@tool
def order_status(number: int, *, caller: Caller) -> str:
    \"\"\"The status of one of the asking user's orders, by its number.\"\"\"
```

List the function's dotted path in `STREAMING_TOOLS`. `definition` is what a tool is; `registry` which tools there
are and who is offered which; `running` how a call the model wrote runs; `builtin` the two tools that come with the
app. How a call ended is `streaming.relay.tool_outcome`, outside this package, since the pure parts of the relay (the
assembly of calls, the log's reads) need it without the registry.
"""

from streaming.clients import Client as Caller
from streaming.relay.tool_outcome import (
    INVALID_ARGUMENTS,
    TOO_MANY_CALLS,
    TOOL_FAILED,
    TOOL_NOT_OFFERED,
    TOOL_TIMEOUT,
    Outcome,
)
from streaming.tools.definition import Tool, ToolError, tool, tool_of
from streaming.tools.registry import model_gets_tools, offered_tools, registered_tools, strict_schemas
from streaming.tools.running import run_call

__all__ = [
    "INVALID_ARGUMENTS",
    "TOOL_FAILED",
    "TOOL_NOT_OFFERED",
    "TOOL_TIMEOUT",
    "TOO_MANY_CALLS",
    "Caller",
    "Outcome",
    "Tool",
    "ToolError",
    "model_gets_tools",
    "offered_tools",
    "registered_tools",
    "run_call",
    "strict_schemas",
    "tool",
    "tool_of",
]
