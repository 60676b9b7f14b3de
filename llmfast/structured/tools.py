"""Tools from Python functions: the definition from the signature, arguments validated.

``@llmfast.tool`` (or ``llmfast.tool(fn)``) reads a function's type hints and docstring
once and returns a [FunctionTool][llmfast.structured.tools.FunctionTool]: its
``definition`` is what the model is offered (strict where the parameters allow it), and
[call][llmfast.structured.tools.FunctionTool.call] decodes the model's JSON arguments
into the parameters' types with msgspec before running the function: async functions
on the loop, plain ones in a worker thread, each within its timeout.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, Protocol, TypeVar, get_type_hints, overload

import msgspec

from llmfast.structured.output import OutputParseError, OutputSpec, output_spec
from llmfast.types import FunctionDefinition, Tool

__all__ = ["FunctionTool", "ToolArgumentsError", "tool"]

R = TypeVar("R")
_encode = msgspec.json.Encoder().encode


class ToolArgumentsError(ValueError):
    """The model's arguments for a tool did not decode into its parameters."""

    def __init__(self, tool: str, message: str, path: str | None = None) -> None:
        super().__init__(f"invalid arguments for {tool}: {message}")
        self.tool = tool
        self.path = path


class FunctionTool(Generic[R]):
    """A Python function offered to the model as a tool.

    Attributes:
        name: the tool's name (the function's, unless given).
        description: from the docstring's summary, unless given.
        definition: the [Tool][llmfast.types.Tool] sent in ``tools=``.
        strict: whether the parameters' schema fits strict mode.
        timeout: seconds a call may take (``None``: no limit).
    """

    def __init__(
        self,
        fn: Callable[..., R] | Callable[..., Awaitable[R]],
        *,
        name: str | None = None,
        description: str | None = None,
        strict: bool | None = None,
        timeout: float | None = 60.0,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"a tool must be callable, not {fn!r}")
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        summary, param_docs = parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        self.timeout = timeout
        self._is_async = _is_async(fn)
        self._args_type = _arguments_struct(fn, self.name, param_docs)
        self._spec: OutputSpec[Any] = output_spec(self._args_type)
        fits = self._spec.strict.strict
        if strict and not fits:
            reasons = "; ".join(self._spec.strict.reasons)
            raise TypeError(f"the parameters of {self.name} can't be strict: {reasons}")
        self.strict = fits if strict is None else strict
        schema = dict(self._spec.strict.schema if self.strict else self._spec.schema)
        schema.pop("title", None)
        self.definition = Tool(
            function=FunctionDefinition(
                name=self.name,
                description=self.description or None,
                parameters=schema,
                strict=True if self.strict else None,
            )
        )
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself (the decorator keeps it usable as before)."""
        return self.fn(*args, **kwargs)

    def parse_arguments(self, arguments: str | bytes) -> dict[str, Any]:
        """The keyword arguments the model's JSON ``arguments`` stand for, validated."""
        text = arguments if arguments else "{}"
        try:
            parsed = self._spec.parse(text)
        except OutputParseError as exc:
            raise ToolArgumentsError(self.name, str(exc), exc.path) from exc
        return {f: getattr(parsed, f) for f in parsed.__struct_fields__}

    async def call(self, arguments: str | bytes) -> R:
        """Run the tool with the model's JSON arguments; raises
        [ToolArgumentsError][llmfast.structured.tools.ToolArgumentsError] for bad ones,
        ``TimeoutError`` past ``timeout``, and whatever the function raises."""
        kwargs = self.parse_arguments(arguments)
        if self._is_async:
            result: Any = self.fn(**kwargs)
        else:
            result = asyncio.to_thread(self.fn, **kwargs)
        if self.timeout is None:
            return await result  # type: ignore[no-any-return]
        return await asyncio.wait_for(result, self.timeout)

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r}, strict={self.strict})"


def result_text(result: Any) -> str:
    """A tool's result as the text of its tool message (JSON unless it is a string)."""
    if isinstance(result, str):
        return result
    try:
        return _encode(result).decode()
    except (TypeError, ValueError):
        return str(result)


class _ToolDecorator(Protocol):
    @overload
    def __call__(self, fn: Callable[..., Awaitable[R]], /) -> FunctionTool[R]: ...
    @overload
    def __call__(self, fn: Callable[..., R], /) -> FunctionTool[R]: ...


@overload
def tool(fn: Callable[..., Awaitable[R]], /) -> FunctionTool[R]: ...


@overload
def tool(fn: Callable[..., R], /) -> FunctionTool[R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool | None = None,
    timeout: float | None = 60.0,
) -> _ToolDecorator: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool | None = None,
    timeout: float | None = 60.0,
) -> Any:
    """Make a [FunctionTool][llmfast.structured.tools.FunctionTool] of ``fn``: as
    ``@tool``, ``@tool(timeout=5)`` or ``tool(fn)``.

    Args:
        name: the tool's name (default: the function's).
        description: what the model reads (default: the docstring's summary).
        strict: ``True`` requires a strict-mode schema, ``False`` never sends one,
            ``None`` (default) is strict when the parameters allow it.
        timeout: seconds a call may take (``None``: no limit; a sync function's thread
            can't be stopped, only stopped waiting for).
    """

    def make(f: Callable[..., Any]) -> FunctionTool[Any]:
        return FunctionTool(f, name=name, description=description, strict=strict, timeout=timeout)

    return make if fn is None else make(fn)


def _is_async(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )


def _arguments_struct(fn: Any, name: str, docs: dict[str, str]) -> Any:
    target = fn.func if isinstance(fn, functools.partial) else fn
    signature = inspect.signature(fn)
    try:
        hints = get_type_hints(target, include_extras=True)
    except Exception as exc:  # an unresolvable forward reference
        raise TypeError(f"can't read the type hints of {name}: {exc}") from exc
    fields: list[Any] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{name}: *args and **kwargs can't be offered to a model")
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"{name}: positional-only parameters can't be passed by name")
        annotation: Any = hints.get(param.name, Any)
        doc = docs.get(param.name)
        if doc:
            annotation = _described(annotation, doc)
        if param.default is param.empty:
            fields.append((param.name, annotation))
        else:
            fields.append((param.name, annotation, param.default))
    safe = re.sub(r"[^a-zA-Z0-9_]", "_", name) or "tool"
    return msgspec.defstruct(f"{safe}_arguments", fields, forbid_unknown_fields=True)


def _described(annotation: Any, doc: str) -> Any:
    return Annotated[annotation, msgspec.Meta(description=doc)]


_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Returns?|Raises|Yields|Examples?|Notes?)\s*:?\s*$"
)
_GOOGLE_ARG = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_NUMPY_ARG = re.compile(r"^(\w+)\s*(?::\s*.*)?$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary and the per-parameter descriptions of a Google-, NumPy- or
    Sphinx-style docstring."""
    lines = doc.splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    numpy_style = False
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        header = _SECTION.match(stripped)
        if header and (i + 1 >= len(lines) or not lines[i + 1].strip().startswith(":")):
            section = header.group(1).lower()
            current = None
            numpy_style = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
            if numpy_style:
                i += 1  # a NumPy underline
            i += 1
            continue
        sphinx = _SPHINX_PARAM.match(stripped)
        if sphinx:
            current = sphinx.group(1)
            params[current] = sphinx.group(2).strip()
            section = "sphinx"
        elif section in ("args", "arguments", "parameters", "params"):
            indent = len(line) - len(line.lstrip())
            google = _GOOGLE_ARG.match(stripped)
            numpy = _NUMPY_ARG.match(stripped)
            if numpy_style:
                if numpy and indent == 0:
                    current = numpy.group(1)
                    params[current] = ""
                elif stripped and current is not None:
                    params[current] = f"{params[current]} {stripped}".strip()
            elif google and (current is None or indent <= _indent_of(lines, current)):
                current = google.group(1).lstrip("*")
                params[current] = google.group(2).strip()
            elif stripped and current is not None:
                params[current] = f"{params[current]} {stripped}".strip()
        elif section is None or (section == "sphinx" and not stripped.startswith(":")):
            if section is None:
                summary.append(line)
            elif current is not None and stripped:
                params[current] = f"{params[current]} {stripped}".strip()
        i += 1
    text = "\n".join(summary).strip()
    return text, {k: v for k, v in params.items() if v}


def _indent_of(lines: list[str], name: str) -> int:
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(name) and _GOOGLE_ARG.match(stripped.strip()):
            return len(line) - len(stripped)
    return 0
