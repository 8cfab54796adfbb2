"""What a tool is: a plain function, with the schema and the description the model is told of it.

`@tool` turns a function into a `Tool`: its JSON schema is built by pydantic from the signature and type hints
(never written by hand), its description is its docstring, and the parameter annotated `Caller` is left out of the
schema, to be filled in when the call runs. Everything a model could not be told about is refused at once, when the
module defining the tool is imported, not when a model first calls it.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import pydantic
from pydantic.json_schema import GenerateJsonSchema

from streaming.clients import Client as Caller

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTE = "streaming_tool"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI accepts as a function name


class ToolError(Exception):
    """A failure a tool reports in its own words: the model and the page see `message` as it is."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, eq=False)
class Tool:
    """A registered function with what the model is told of it and what a caller needs to use it."""

    name: str
    description: str
    function: Callable[..., Any]
    arguments: type[pydantic.BaseModel]  # validates what the model wrote
    caller_parameter: str | None
    is_async: bool
    login_required: bool
    staff_required: bool
    schema: dict[str, Any] = field(repr=False)  # built once, when the tool is registered
    # Running it twice does no more than running it once: a worker that takes over an answer (`STREAMING_TAKEOVER`)
    # may run again a call that was running when the worker before it died.
    idempotent: bool = False
    # The `tools` entries, strict and not, built at their first use: every prompt offers the same ones.
    _entries: dict[bool, dict[str, Any]] = field(default_factory=dict, repr=False)

    def param_schema(self) -> dict[str, Any]:
        """The JSON schema of the parameters the model fills in (the caller is not one of them)."""
        return copy.deepcopy(self.schema)

    def openai_tool(self, strict: bool) -> dict[str, Any]:
        """The chat-completions `tools` entry. Strict (where the provider supports it, see `strict_schemas`) only when
        strict mode can take the schema: every property of every object required, as OpenAI demands.

        The same dict at every call, to be read, not changed: building it deep-copies the schema, which every prompt
        of a burst did before (docs/performance.md)."""
        if (entry := self._entries.get(strict)) is None:
            entry = self._entries[strict] = self._openai_tool(strict)
        return entry

    def _openai_tool(self, strict: bool) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name, "description": self.description}
        closed = _strict(self.schema) if strict else None
        if closed is not None:
            function.update(parameters=closed, strict=True)
        else:
            function["parameters"] = self.param_schema()
        return {"type": "function", "function": function}

    def allows(self, caller: Caller) -> bool:
        """Whether this caller may use the tool: asked when tools are offered and again when a call runs."""
        if self.staff_required and not caller.is_staff:
            return False
        return not (self.login_required and caller.user_id is None)


@overload
def tool(function: F, /) -> F: ...
@overload
def tool(
    *, name: str | None = None, login_required: bool = False, staff_required: bool = False, idempotent: bool = False
) -> Callable[[F], F]: ...
def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    login_required: bool = False,
    staff_required: bool = False,
    idempotent: bool = False,
) -> Any:
    """Make `function` (sync or async) a tool, `@tool` or `@tool(name=..., login_required=..., staff_required=...,
    idempotent=...)`. `idempotent` says that running a call twice does no more than running it once (a lookup, not
    an order), so that a worker taking over an answer may run again a call its dying worker had begun.

    The function itself is returned, callable as before. Raises `TypeError` at once for a function the model could
    not be told about: no docstring, a parameter without a type hint, `*args`/`**kwargs`, or hints pydantic cannot
    turn into a schema.
    """

    def register(function: F) -> F:
        built = _build(function, name=name or function.__name__, login=login_required, staff=staff_required)
        if idempotent:
            built = dataclasses.replace(built, idempotent=True)
        setattr(function, _ATTRIBUTE, built)
        return function

    return register if function is None else register(function)


def tool_of(function: Callable[..., Any]) -> Tool:
    """The `Tool` that `@tool` made of `function`."""
    built = getattr(function, _ATTRIBUTE, None)
    if not isinstance(built, Tool):
        raise TypeError(f"{function!r} is not a tool: decorate it with @streaming.tools.tool")
    return built


class _Untitled(GenerateJsonSchema):
    """pydantic's schema without the titles it makes up from field names: tokens the model would read every turn."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _build(function: Callable[..., Any], *, name: str, login: bool, staff: bool) -> Tool:
    where = f"@tool {getattr(function, '__qualname__', name)}"
    if not _NAME.match(name):
        raise TypeError(f"{where}: the name {name!r} must be 1 to 64 letters, digits, '_' or '-'")
    description = inspect.getdoc(function)
    if not description:
        raise TypeError(f"{where}: a tool needs a docstring, which tells the model what it does")
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as exc:
        raise TypeError(f"{where}: its type hints cannot be resolved ({type(exc).__name__})") from exc
    fields: dict[str, Any] = {}
    caller_parameter = None
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            raise TypeError(f"{where}: parameter {parameter.name!r} cannot be passed by name; tools take named ones")
        if parameter.name not in hints:
            raise TypeError(f"{where}: parameter {parameter.name!r} has no type hint, so it has no schema")
        if _is_caller(hints[parameter.name]):
            caller_parameter = parameter.name
            continue
        if _mentions_caller(hints[parameter.name]):  # the model would write who it is: never
            raise TypeError(f"{where}: parameter {parameter.name!r} must be typed exactly `Caller` to be the caller")
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (hints[parameter.name], default)
    try:
        arguments = pydantic.create_model(f"{name}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields)
        schema = arguments.model_json_schema(schema_generator=_Untitled)
    except (pydantic.PydanticUserError, TypeError, ValueError, NameError) as exc:
        raise TypeError(f"{where}: pydantic cannot build a schema of its parameters: {exc}") from exc
    schema.pop("title", None)
    return Tool(
        name=name,
        description=description,
        function=function,
        arguments=arguments,
        caller_parameter=caller_parameter,
        is_async=inspect.iscoroutinefunction(function),
        login_required=login or staff,
        staff_required=staff,
        schema=schema,
    )


def _is_caller(hint: Any) -> bool:
    """`Caller`, also as `Annotated[Caller, ...]`: the parameter the app fills in."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return hint is Caller


def _mentions_caller(hint: Any) -> bool:
    """Whether `Caller` appears anywhere in the hint (`Caller | None`, `list[Caller]`...): a schema would let the model
    fill it in, forging who asks."""
    return hint is Caller or any(_mentions_caller(arg) for arg in typing.get_args(hint))


class _NotStrict(Exception):
    pass


def _strict(schema: dict[str, Any]) -> dict[str, Any] | None:
    """A copy of `schema` with every object closed, or None where OpenAI's strict mode would refuse it."""
    try:
        return _close(schema)
    except _NotStrict:
        return None


def _close(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if "$ref" in node and len(node) > 1:  # strict mode takes a bare $ref only
        raise _NotStrict
    node = dict(node)
    properties = node.get("properties")
    if node.get("type") == "object" or properties is not None:
        if set(node.get("required", ())) != set(properties or ()) or node.get("additionalProperties", False):
            raise _NotStrict  # an optional property, or a free-form mapping
        node["additionalProperties"] = False
        if properties is not None:
            node["required"] = list(properties)  # strict mode wants the list even when it is empty
    for key in ("properties", "$defs"):
        if key in node:
            node[key] = {name: _close(value) for name, value in node[key].items()}
    if "items" in node:
        node["items"] = _close(node["items"])
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        if key in node:
            node[key] = [_close(value) for value in node[key]]
    return node
