"""Every error code the sources give to an error, found by reading them (``ast``).

:func:`scan` reads every module under the given package directories and reports each place a
:class:`~logto_core.errors.LogtoError` subclass is given a ``code``:

* a class attribute ``code = "..."`` (or ``code: str = "..."``) in the body of an error class;
* a ``code=`` keyword of a call that constructs an error class (``DiscoveryError(...,
  code="discovery.issuer_mismatch")``, ``errors.TransportError(...)``), and of
  ``super().__init__(...)`` inside an error class;
* ``self.code = ...`` inside a method of an error class.

The error classes are found by their bases, from ``LogtoError`` down, across modules and
imports. A code expression is resolved to the codes it can take:

* a string literal;
* a module-level string constant, here or imported (``TIMEOUT``, ``policy.FAILED``);
* an f-string (``f"storage.{action}"``) or a ``+`` of strings, piece by piece;
* ``a if cond else b`` (both), a local variable (every value assigned to it);
* a parameter of the enclosing function: the arguments of every call of that function in
  the scanned sources (by position or keyword, with the parameter's default where a call
  leaves it out), resolved in the caller's context. So ``storage_failed("read", ...)`` in
  another module makes ``f"storage.{action}"`` give ``storage.read``.

What cannot be resolved (an attribute such as ``self.error``, a parameter of an error class's
method, a function nobody calls) becomes a ``{}`` placeholder in the pattern:
``f"oauth.{self.error}"`` is ``oauth.{}``. A ``code`` parameter of an error class's
``__init__`` passed on unchanged (``super().__init__(message, code=code)``,
``self.code = code``) gives no code: it forwards what its callers pass, and they are scanned.

A code assigned to ``<something>.code`` outside an error class, and a literal or f-string
``code=`` given to a callee the scan cannot name (``cls(message, code="area.detail")``),
cannot be attributed to a class; they are reported in :attr:`Scan.unattributed`.

Not seen: a code in a ``**kwargs`` mapping, or built by a function's return value.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT_ERROR = ("logto_core.errors", "LogtoError")
PLACEHOLDER = "{}"
_MAX_DEPTH = 6

_Func = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True, slots=True)
class Given:
    """One place where the sources give a code (``pattern``) to an error class."""

    pattern: str
    error: str
    where: str

    @property
    def is_concrete(self) -> bool:
        return PLACEHOLDER not in self.pattern


@dataclass
class Scan:
    given: list[Given] = field(default_factory=list)
    error_classes: dict[tuple[str, str], str] = field(default_factory=dict)
    """(module, class name) -> where the class is defined."""
    unattributed: list[str] = field(default_factory=list)


@dataclass
class _Module:
    name: str
    path: str
    tree: ast.Module
    package: str
    constants: dict[str, ast.expr] = field(default_factory=dict)
    symbols: dict[str, tuple[str, str]] = field(default_factory=dict)
    """local name -> (module, name) of a ``from module import name``."""
    modules: dict[str, str] = field(default_factory=dict)
    """local name -> module of ``import a.b as c`` or ``from pkg import module``."""
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    functions: dict[str, _Func] = field(default_factory=dict)


@dataclass(frozen=True)
class _Context:
    module: _Module
    function: _Func | None
    cls: ast.ClassDef | None


def normalise(pattern: str) -> str:
    """A registry family (``oauth.{error}``) in the scan's notation (``oauth.{}``)."""
    out: list[str] = []
    depth = 0
    for char in pattern:
        if char == "{":
            if depth == 0:
                out.append(PLACEHOLDER)
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


class _Scanner:
    def __init__(self, modules: dict[str, _Module]) -> None:
        self.modules = modules
        self.scan = Scan()
        self.error_keys: set[tuple[str, str]] = set()
        self._calls: list[tuple[ast.Call, _Context]] = []

    # -- names -------------------------------------------------------------------------

    def _resolve_symbol(self, module: str, name: str, depth: int = 0) -> tuple[str, str] | None:
        """Follow re-exports to the module that defines ``name``."""
        info = self.modules.get(module)
        if info is None or depth > _MAX_DEPTH:
            return None
        if name in info.classes or name in info.functions or name in info.constants:
            return (module, name)
        if name in info.symbols:
            return self._resolve_symbol(*info.symbols[name], depth=depth + 1)
        if f"{module}.{name}" in self.modules:
            return None
        return None

    def _resolve_dotted(self, node: ast.expr, module: _Module) -> tuple[str, str] | None:
        if isinstance(node, ast.Name):
            return self._resolve_symbol(module.name, node.id)
        if isinstance(node, ast.Attribute):
            owner = self._module_of(node.value, module)
            if owner is not None:
                return self._resolve_symbol(owner, node.attr)
        return None

    def _module_of(self, node: ast.expr, module: _Module) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in module.modules:
                return module.modules[node.id]
            symbol = module.symbols.get(node.id)
            if symbol is not None and f"{symbol[0]}.{symbol[1]}" in self.modules:
                return f"{symbol[0]}.{symbol[1]}"
            return None
        if isinstance(node, ast.Attribute):
            parent = self._module_of(node.value, module)
            if parent is not None and f"{parent}.{node.attr}" in self.modules:
                return f"{parent}.{node.attr}"
        return None

    # -- error classes ------------------------------------------------------------------

    def find_error_classes(self) -> None:
        self.error_keys = {ROOT_ERROR} if ROOT_ERROR[0] in self.modules else set()
        changed = True
        while changed:
            changed = False
            for module in self.modules.values():
                for name, node in module.classes.items():
                    key = (module.name, name)
                    if key in self.error_keys:
                        continue
                    bases = (self._resolve_dotted(base, module) for base in node.bases)
                    if any(base in self.error_keys for base in bases):
                        self.error_keys.add(key)
                        changed = True
        for module_name, name in self.error_keys:
            module = self.modules[module_name]
            self.scan.error_classes[(module_name, name)] = (
                f"{module.path}:{module.classes[name].lineno}"
            )

    def _error_class(self, func: ast.expr, module: _Module) -> tuple[str, str] | None:
        key = self._resolve_dotted(func, module)
        return key if key in self.error_keys else None

    # -- walking ------------------------------------------------------------------------

    def walk(self) -> None:
        for module in self.modules.values():
            self._walk_body(module.tree.body, _Context(module, None, None))
        for call, context in self._calls:
            self._call(call, context)

    def _walk_body(self, body: Iterable[ast.stmt], context: _Context) -> None:
        for statement in body:
            self._walk(statement, context)

    def _walk(self, node: ast.AST, context: _Context) -> None:
        if isinstance(node, ast.ClassDef):
            inner = _Context(context.module, None, node)
            if self._is_error_class_node(node, context):
                self._class_body(node, inner)
            self._walk_body(node.body, inner)
            for expr in (*node.bases, *node.decorator_list):
                self._walk(expr, context)
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inner = _Context(context.module, node, context.cls)
            self._walk_body(node.body, inner)
            outer: list[ast.expr | None] = [
                *node.args.defaults,
                *node.args.kw_defaults,
                *node.decorator_list,
            ]
            for default in outer:
                if default is not None:
                    self._walk(default, context)
            return
        if isinstance(node, ast.Call):
            self._calls.append((node, context))
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            self._code_assignment(node, context)
        for child in ast.iter_child_nodes(node):
            self._walk(child, context)

    def _is_error_class_node(self, node: ast.ClassDef, context: _Context) -> bool:
        return context.module.classes.get(node.name) is node and (
            (context.module.name, node.name) in self.error_keys
        )

    def _where(self, node: ast.AST, context: _Context) -> str:
        return f"{context.module.path}:{getattr(node, 'lineno', 0)}"

    def _give(self, expr: ast.expr, error: str, node: ast.AST, context: _Context) -> None:
        for pattern in sorted(set(self._patterns(expr, context, 0, frozenset()))):
            self.scan.given.append(Given(pattern, error, self._where(node, context)))

    def _class_body(self, node: ast.ClassDef, context: _Context) -> None:
        for statement in node.body:
            value: ast.expr | None = None
            if isinstance(statement, ast.Assign):
                if any(isinstance(t, ast.Name) and t.id == "code" for t in statement.targets):
                    value = statement.value
            elif isinstance(statement, ast.AnnAssign):
                target = statement.target
                if isinstance(target, ast.Name) and target.id == "code":
                    value = statement.value
            if value is not None:
                self._give(value, node.name, statement, context)

    def _code_assignment(
        self, node: ast.Assign | ast.AugAssign | ast.AnnAssign, context: _Context
    ) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if not (isinstance(target, ast.Attribute) and target.attr == "code"):
                continue
            value = node.value
            cls = context.cls
            in_error_method = (
                cls is not None
                and context.function is not None
                and (context.module.name, cls.name) in self.error_keys
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            )
            on_self = isinstance(target.value, ast.Name) and target.value.id == "self"
            if on_self and cls is not None and not in_error_method:
                continue  # another class's own ``code`` attribute
            if not in_error_method or value is None or isinstance(node, ast.AugAssign):
                self.scan.unattributed.append(
                    f"{self._where(node, context)}: {ast.unparse(node).strip()}"
                )
                continue
            assert cls is not None
            if self._forwards_code(value, context):
                continue
            self._give(value, cls.name, node, context)

    def _call(self, call: ast.Call, context: _Context) -> None:
        code = next((k.value for k in call.keywords if k.arg == "code"), None)
        if code is None:
            return
        key = self._error_class(call.func, context.module)
        if key is not None:
            self._give(code, key[1], call, context)
            return
        if self._is_super_init(call) and context.cls is not None:
            cls = context.cls
            if (context.module.name, cls.name) not in self.error_keys:
                return
            if self._forwards_code(code, context):
                return
            self._give(code, cls.name, call, context)
            return
        if self._resolve_dotted(call.func, context.module) is None and _looks_like_code(code):
            # ``cls(message, code="area.detail")``: some class the scan cannot name.
            self.scan.unattributed.append(
                f"{self._where(call, context)}: {ast.unparse(call.func)}(..., "
                f"code={ast.unparse(code)})"
            )

    @staticmethod
    def _is_super_init(call: ast.Call) -> bool:
        func = call.func
        return (
            isinstance(func, ast.Attribute)
            and func.attr == "__init__"
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "super"
        )

    @staticmethod
    def _forwards_code(expr: ast.expr, context: _Context) -> bool:
        """``code`` passed on by an error class's ``__init__``: its callers give it."""
        function = context.function
        return (
            isinstance(expr, ast.Name)
            and expr.id == "code"
            and function is not None
            and function.name == "__init__"
            and "code" in _parameters(function)
        )

    # -- resolving code expressions -----------------------------------------------------

    def _patterns(
        self, expr: ast.expr, context: _Context, depth: int, seen: frozenset[int]
    ) -> Iterator[str]:
        if depth > _MAX_DEPTH or id(expr) in seen:
            yield PLACEHOLDER
            return
        seen = seen | {id(expr)}
        if isinstance(expr, ast.Constant):
            yield expr.value if isinstance(expr.value, str) else PLACEHOLDER
        elif isinstance(expr, ast.JoinedStr):
            pieces: list[list[str]] = []
            for part in expr.values:
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    pieces.append([part.value])
                elif isinstance(part, ast.FormattedValue) and part.format_spec is None:
                    pieces.append(sorted(set(self._patterns(part.value, context, depth, seen))))
                else:
                    pieces.append([PLACEHOLDER])
            for combination in itertools.product(*pieces):
                yield "".join(combination)
        elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            left = sorted(set(self._patterns(expr.left, context, depth, seen)))
            right = sorted(set(self._patterns(expr.right, context, depth, seen)))
            for a, b in itertools.product(left, right):
                yield a + b
        elif isinstance(expr, ast.IfExp):
            yield from self._patterns(expr.body, context, depth, seen)
            yield from self._patterns(expr.orelse, context, depth, seen)
        elif isinstance(expr, ast.Name):
            yield from self._name(expr.id, context, depth, seen)
        elif isinstance(expr, ast.Attribute):
            owner = self._module_of(expr.value, context.module)
            symbol = self._resolve_symbol(owner, expr.attr) if owner else None
            yield from self._constant(symbol, depth, seen)
        else:
            yield PLACEHOLDER

    def _constant(
        self, symbol: tuple[str, str] | None, depth: int, seen: frozenset[int]
    ) -> Iterator[str]:
        module = self.modules.get(symbol[0]) if symbol else None
        if symbol is None or module is None or symbol[1] not in module.constants:
            yield PLACEHOLDER
            return
        yield from self._patterns(
            module.constants[symbol[1]], _Context(module, None, None), depth + 1, seen
        )

    def _name(
        self, name: str, context: _Context, depth: int, seen: frozenset[int]
    ) -> Iterator[str]:
        function = context.function
        if function is not None:
            assigned = [
                node.value
                for node in ast.walk(function)
                if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
            ]
            if assigned:
                for value in assigned:
                    yield from self._patterns(value, context, depth + 1, seen)
                return
            if name in _parameters(function):
                yield from self._parameter(name, function, context, depth, seen)
                return
        yield from self._constant(self._resolve_symbol(context.module.name, name), depth, seen)

    def _parameter(
        self, name: str, function: _Func, context: _Context, depth: int, seen: frozenset[int]
    ) -> Iterator[str]:
        cls = context.cls
        if cls is not None and (context.module.name, cls.name) in self.error_keys:
            yield PLACEHOLDER  # an error's own constructor argument: the caller's data
            return
        positional = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        is_method = cls is not None and bool(positional) and positional[0] in ("self", "cls")
        if is_method:
            positional = positional[1:]
        default = _default(function, name)
        found = False
        for call, caller in self._calls:
            if not self._calls_function(call, caller, function, context, is_method):
                continue
            found = True
            argument = _argument(call, name, positional)
            if argument is None:
                argument = default
                if argument is None:
                    continue  # *args/**kwargs, or a call that does not type-check
                yield from self._patterns(argument, context, depth + 1, seen)
            else:
                yield from self._patterns(argument, caller, depth + 1, seen)
        if not found:
            if default is not None:
                yield from self._patterns(default, context, depth + 1, seen)
            else:
                yield PLACEHOLDER

    def _calls_function(
        self, call: ast.Call, caller: _Context, function: _Func, context: _Context, is_method: bool
    ) -> bool:
        if is_method:
            return isinstance(call.func, ast.Attribute) and call.func.attr == function.name
        if context.module.functions.get(function.name) is not function:
            return False  # a nested function: only its own module's calls by name
        target = (context.module.name, function.name)
        return self._resolve_dotted(call.func, caller.module) == target


def _looks_like_code(expr: ast.expr) -> bool:
    if isinstance(expr, ast.JoinedStr):
        return True
    return isinstance(expr, ast.Constant) and isinstance(expr.value, str)


def _parameters(function: _Func) -> set[str]:
    args = function.args
    return {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}


def _default(function: _Func, name: str) -> ast.expr | None:
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    offset = len(positional) - len(args.defaults)
    for index, arg in enumerate(positional):
        if arg.arg == name and index >= offset:
            return args.defaults[index - offset]
    for arg, value in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if arg.arg == name:
            return value
    return None


def _argument(call: ast.Call, name: str, positional: list[str]) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    if name in positional:
        index = positional.index(name)
        if index < len(call.args) and not any(
            isinstance(a, ast.Starred) for a in call.args[: index + 1]
        ):
            return call.args[index]
    return None


def _load(path: Path, base: Path) -> _Module:
    relative = path.relative_to(base).with_suffix("")
    parts = list(relative.parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    name = ".".join(parts)
    package = name if is_package else ".".join(parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _Module(name, str(path.relative_to(base)), tree, package)
    for statement in tree.body:
        if isinstance(statement, ast.ClassDef):
            module.classes[statement.name] = statement
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            module.functions[statement.name] = statement
        elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                module.constants[target.id] = statement.value
        elif (
            isinstance(statement, ast.AnnAssign)
            and statement.value is not None
            and isinstance(statement.target, ast.Name)
        ):
            module.constants[statement.target.id] = statement.value
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node, module.package)
            for alias in node.names:
                local = alias.asname or alias.name
                module.symbols[local] = (source, alias.name)
                module.modules.setdefault(local, f"{source}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    module.modules[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    module.modules[top] = top
    return module


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    parts = package.split(".") if package else []
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    if node.module:
        parts.append(node.module)
    return ".".join(parts)


def scan(packages: Iterable[Path]) -> Scan:
    """Scan every ``*.py`` file under each package directory (named relative to its parent)."""
    modules: dict[str, _Module] = {}
    for package in packages:
        base = package.parent
        for path in sorted(package.rglob("*.py")):
            module = _load(path, base)
            modules[module.name] = module
    for module in modules.values():
        # ``from pkg import name`` imports a module only when there is one by that name.
        module.modules = {k: v for k, v in module.modules.items() if v in modules}
    scanner = _Scanner(modules)
    scanner.find_error_classes()
    scanner.walk()
    return scanner.scan
