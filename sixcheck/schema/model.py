"""Strict, frozen profile records, and the validator that builds them from parsed YAML.

A profile section is declared as a class of annotated fields (`class Node(Strict): role:
Literal[...]`). This module reads those annotations and checks data against them: no coercion
(`"2"` is not a number, `1` is not `true`), no unknown keys, every problem collected with its key
path instead of stopping at the first, then the section's `@invariant` rules across fields.

Why not pydantic, which did this before: its import and model classes took about 75 ms of every
start-up, a third of a `--collect-only` run (issue 15), for a schema that needs a dozen kinds of
type. Class creation here only records field names; the annotations are read the first time a
class validates data, so a run pays only for the sections its profile has.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, Literal, Self, Union, dataclass_transform

Loc = tuple[str | int, ...]


class Issue:
    """One problem with the data: where (a key path) and what, in words for a profile's author."""

    __slots__ = ("loc", "message")

    def __init__(self, loc: Loc, message: str) -> None:
        self.loc = loc
        self.message = message

    def __repr__(self) -> str:
        return f"Issue({self.loc!r}, {self.message!r})"


class ValidationError(ValueError):
    """Data that does not fit a `Strict` class; `issues` holds every problem found."""

    def __init__(self, title: str, issues: list[Issue]) -> None:
        self.issues = issues
        lines = "\n".join(f"  {'.'.join(map(str, i.loc)) or '(top)'}: {i.message}" for i in issues)
        super().__init__(f"{len(issues)} problem(s) validating {title}:\n{lines}")


class Constraints:
    """Bounds on a value (`ge`, `max_length`, `pattern`...), and a field's default or key."""

    __slots__ = ("alias", "bounds", "default", "default_factory")

    def __init__(
        self,
        default: Any,
        default_factory: Callable[[], Any] | None,
        alias: str | None,
        bounds: dict[str, Any],
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.alias = alias
        self.bounds = bounds


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_INVALID: Any = object()  # a validator's result when it has recorded an issue


def Field(
    default: Any = MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    alias: str | None = None,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    allow_inf_nan: bool = True,
) -> Any:
    """A field's default and bounds (`x: list[int] = Field(min_length=1)`), or bounds inside a
    type (`Annotated[int, Field(ge=1)]`)."""
    bounds = {
        k: v
        for k, v in (
            ("gt", gt),
            ("ge", ge),
            ("lt", lt),
            ("le", le),
            ("min_length", min_length),
            ("max_length", max_length),
            ("pattern", pattern),
        )
        if v is not None
    }
    if not allow_inf_nan:
        bounds["finite"] = True
    return Constraints(default, default_factory, alias, bounds)


class Before:
    """`Annotated[T, Before(f)]`: `f` turns the raw value into a T (or raises ValueError with
    what is wrong); the result is then checked as a T."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func


class After:
    """`Annotated[T, After(f)]`: `f` checks (and may normalise) a value already known to be a T."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func


def invariant(method: Callable[[Any], None]) -> Callable[[Any], None]:
    """Mark a method as a rule across fields, run once every field is valid; it raises
    ValueError saying what is wrong, reported at the section's key path."""
    method.__sixcheck_invariant__ = True  # type: ignore[attr-defined]
    return method


# ---------------------------------------------------------------------------------------------
# messages (worded as pydantic worded them, which the profile docs and tests quote)


def short(value: Any, limit: int = 80) -> str:
    """repr() of a value, cut to a readable length for a one-line problem."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


#: How a key written with nothing after it (`key:`) is named; "NoneType None" means nothing to a user.
NO_VALUE = "nothing (the key has no value)"


def _got(what: str, value: Any) -> str:
    if value is None:
        return f"Input should be {what}, got {NO_VALUE}"
    return f"Input should be {what}, got {type(value).__name__} {short(value)}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _bound_issue(value: Any, bounds: dict[str, Any]) -> str | None:
    """The first bound `value` breaks, in words, or None."""
    if bounds.get("finite") and isinstance(value, float) and not math.isfinite(value):
        return "Input should be a finite number"
    for key, words in (
        ("gt", "greater than"),
        ("ge", "greater than or equal to"),
        ("lt", "less than"),
        ("le", "less than or equal to"),
    ):
        if key in bounds and isinstance(value, int | float):
            limit = bounds[key]
            ok = {"gt": value > limit, "ge": value >= limit, "lt": value < limit}.get(
                key, value <= limit
            )
            if not ok:
                return f"Input should be {words} {limit}"
    if isinstance(value, str | list | dict):
        kind, unit, after = (
            ("String", "character", "")
            if isinstance(value, str)
            else ("List" if isinstance(value, list) else "Dictionary", "item", " after validation")
        )
        size = len(value)
        if "min_length" in bounds and size < bounds["min_length"]:
            least = _plural(bounds["min_length"], unit)
            return f"{kind} should have at least {least}{after}" + (
                f", not {size}" if after else ""
            )
        if "max_length" in bounds and size > bounds["max_length"]:
            most = _plural(bounds["max_length"], unit)
            return f"{kind} should have at most {most}{after}" + (f", not {size}" if after else "")
    if "pattern" in bounds and isinstance(value, str) and not re.search(bounds["pattern"], value):
        return f"String should match pattern '{bounds['pattern']}'"
    return None


# ---------------------------------------------------------------------------------------------
# validators: one function per type, built once per class from its annotations

Check = Callable[[Any, Loc, list[Issue]], Any]


def _scalar(kind: type[Any], what: str) -> Check:
    def check(value: Any, loc: Loc, issues: list[Issue]) -> Any:
        # bool is an int to Python; a profile's `true` is never a number (nor 1 a boolean)
        if type(value) is kind or (kind is float and type(value) is int):
            return float(value) if kind is float else value
        issues.append(Issue(loc, _got(what, value)))
        return _INVALID

    return check


_SCALARS: dict[Any, Check] = {
    str: _scalar(str, "a valid string"),
    int: _scalar(int, "a valid integer"),
    float: _scalar(float, "a valid number"),
    bool: _scalar(bool, "a valid boolean"),
}


def _literal(values: tuple[Any, ...]) -> Check:
    shown = [repr(v) for v in values]
    expected = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"

    def check(value: Any, loc: Loc, issues: list[Issue]) -> Any:
        for v in values:
            if type(value) is type(v) and value == v:
                return v
        issues.append(Issue(loc, f"Input should be {expected}, got {short(value)}"))
        return _INVALID

    return check


def _none(value: Any, loc: Loc, issues: list[Issue]) -> Any:
    if value is None:
        return None
    issues.append(Issue(loc, "Input should be None"))
    return _INVALID


def _anything(value: Any, loc: Loc, issues: list[Issue]) -> Any:
    return value


def _union(members: list[Check]) -> Check:
    def check(value: Any, loc: Loc, issues: list[Issue]) -> Any:
        tried: list[Issue] = []
        for member in members:
            mine: list[Issue] = []
            result = member(value, loc, mine)
            if result is not _INVALID:
                return result
            tried += mine
        issues += tried  # what each alternative needed, as each would say it
        return _INVALID

    return check


def _nullable(inner: Check) -> Check:
    def check(value: Any, loc: Loc, issues: list[Issue]) -> Any:
        return None if value is None else inner(value, loc, issues)

    return check


def _list(item: Check) -> Check:
    def check(value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if type(value) is not list:
            issues.append(Issue(loc, _got("a valid list", value)))
            return _INVALID
        before = len(issues)
        out = [item(v, (*loc, i), issues) for i, v in enumerate(value)]
        return out if len(issues) == before else _INVALID

    return check


def _dict(key: Check, item: Check) -> Check:
    def check(value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if type(value) is not dict:
            issues.append(Issue(loc, _got("a valid dictionary", value)))
            return _INVALID
        before = len(issues)
        out = {}
        for k, v in value.items():
            name = key(k, (*loc, str(k)), issues)
            out[name] = item(v, (*loc, str(k)), issues)
        return out if len(issues) == before else _INVALID

    return check


def _instance(kind: type) -> Check:
    def check(value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if isinstance(value, kind):
            return value
        issues.append(Issue(loc, _got(f"an instance of {kind.__name__}", value)))
        return _INVALID

    return check


def _section(kind: type[Strict]) -> Check:
    def check(value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if isinstance(value, kind):
            return value
        if type(value) is not dict:
            issues.append(Issue(loc, _got("a valid dictionary", value)))
            return _INVALID
        return kind._build(value, loc, issues)

    return check


def _annotated(inner: Check, metadata: Iterable[Any]) -> Check:
    befores: list[Callable[[Any], Any]] = []
    afters: list[Callable[[Any], Any]] = []
    bounds: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, Before):
            befores.insert(0, m.func)  # the outermost runs first
        elif isinstance(m, After):
            afters.append(m.func)
        elif isinstance(m, Constraints):
            bounds.update(m.bounds)  # an outer Field narrows an inner one

    def check(value: Any, loc: Loc, issues: list[Issue]) -> Any:
        value = _parsed(befores, value, loc, issues)
        if value is not _INVALID:
            value = inner(value, loc, issues)
        if value is _INVALID:
            return value
        problem = _bound_issue(value, bounds)
        if problem:
            issues.append(Issue(loc, problem))
            return _INVALID
        return _parsed(afters, value, loc, issues)

    return check


def _parsed(funcs: list[Callable[[Any], Any]], value: Any, loc: Loc, issues: list[Issue]) -> Any:
    """`value` through a field's own parsers; a ValueError is the user's problem, in its words."""
    try:
        for f in funcs:
            value = f(value)
    except (ValueError, AssertionError) as exc:
        issues.append(Issue(loc, str(exc)))
        return _INVALID
    return value


def compile_type(tp: Any) -> Check:
    """The validator for an annotation (already evaluated: a type, not a string)."""
    if tp in _SCALARS:
        return _SCALARS[tp]
    if tp is Any:
        return _anything
    if tp is type(None) or tp is None:
        return _none
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        return _annotated(compile_type(args[0]), tp.__metadata__)
    if origin is Literal:
        return _literal(args)
    if origin is Union or origin is types.UnionType:
        rest = [a for a in args if a is not type(None)]
        inner = compile_type(rest[0]) if len(rest) == 1 else _union([compile_type(a) for a in rest])
        return _nullable(inner) if len(rest) < len(args) else inner
    if origin is list:
        return _list(compile_type(args[0]))
    if origin is dict:
        return _dict(compile_type(args[0]), compile_type(args[1]))
    if isinstance(tp, type) and issubclass(tp, Strict):
        return _section(tp)
    if isinstance(tp, type):
        return _instance(tp)
    raise TypeError(f"sixcheck.schema.model cannot validate {tp!r}")


# ---------------------------------------------------------------------------------------------
# the record base


class _FieldSpec:
    __slots__ = ("check", "default", "factory", "key", "name", "rules")

    def __init__(self, name: str, rules: Constraints) -> None:
        self.name = name
        self.key = rules.alias or name
        self.default = rules.default
        self.factory = rules.default_factory
        self.rules = rules
        self.check: Check | None = None


def _copy_default(value: Any) -> Any:
    return type(value)(value) if type(value) in (list, dict) else value


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(Field,))
class Strict:
    """Base of every profile section: unknown keys are errors, values are never coerced, and a
    validated record cannot be changed.

    A typo in a key, or `"yes"` where a number is wanted, must stop the run instead of silently
    changing what is checked.
    """

    __fields: ClassVar[dict[str, _FieldSpec]] = {}
    __keys: ClassVar[dict[str, _FieldSpec]] = {}
    __invariants: ClassVar[list[Callable[[Any], None]]] = []
    __ready: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, _FieldSpec] = {}
        for base in reversed(cls.__mro__[1:]):
            if issubclass(base, Strict) and base is not Strict:
                for name, spec in base.__fields.items():
                    fields[name] = _FieldSpec(name, spec.rules)
        for name, note in vars(cls).get("__annotations__", {}).items():
            if str(note).startswith(("ClassVar", "typing.ClassVar")) or name.startswith("_"):
                continue
            raw = vars(cls).get(name, MISSING)
            if isinstance(raw, Constraints):
                delattr(cls, name)  # the class shows no Constraints where a value belongs
            else:
                raw = Constraints(raw, None, None, {})
            fields[name] = _FieldSpec(name, raw)
        rules: dict[str, Callable[[Any], None]] = {}
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                if getattr(attr, "__sixcheck_invariant__", False):
                    rules[name] = attr
        cls.__fields = fields
        cls.__keys = {f.key: f for f in fields.values()}
        cls.__invariants = list(rules.values())
        cls.__ready = False

    @classmethod
    def __prepare(cls) -> None:
        """Read the annotations (strings until now) into validators, once, on first use."""
        hints = typing.get_type_hints(cls, include_extras=True)
        for name, spec in cls.__fields.items():
            hint = hints[name]
            spec.check = compile_type(Annotated[hint, spec.rules] if spec.rules.bounds else hint)
        cls.__ready = True

    @classmethod
    def _build(cls, data: dict[Any, Any], loc: Loc, issues: list[Issue]) -> Any:
        """A record from a mapping, or _INVALID with every problem added to `issues`."""
        if not cls.__ready:
            cls.__prepare()
        before = len(issues)
        values: dict[str, Any] = {}
        for key, spec in cls.__keys.items():
            if key in data:
                assert spec.check is not None
                values[spec.name] = spec.check(data[key], (*loc, key), issues)
            elif spec.factory is not None:
                values[spec.name] = spec.factory()
            elif spec.default is not MISSING:
                values[spec.name] = _copy_default(spec.default)
            else:
                issues.append(Issue((*loc, key), "required key is missing"))
        for key in data:
            if key not in cls.__keys:
                issues.append(
                    Issue(
                        (*loc, str(key)),
                        "unknown key (a typo? see profiles/README.md for the keys of each section)",
                    )
                )
        if len(issues) > before:
            return _INVALID
        record = object.__new__(cls)
        record.__dict__.update(values)
        for rule in cls.__invariants:
            try:
                rule(record)
            except (ValueError, AssertionError) as exc:
                issues.append(Issue(loc, str(exc)))
                return _INVALID
        return record

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """A record from parsed YAML (or any mapping); raises ValidationError listing every
        problem."""
        issues: list[Issue] = []
        record = _section(cls)(data, (), issues)
        if record is _INVALID:
            raise ValidationError(cls.__name__, issues)
        return typing.cast(Self, record)

    def __init__(self, **values: Any) -> None:
        """Validated like data from a profile, so code that builds a record by hand cannot
        make one a profile could not."""
        issues: list[Issue] = []
        built = type(self)._build(values, (), issues)
        if built is _INVALID:
            raise ValidationError(type(self).__name__, issues)
        self.__dict__.update(built.__dict__)

    @classmethod
    def fields(cls) -> dict[str, str]:
        """{field name: its key in a profile} (they differ where the key is a Python word)."""
        return {name: spec.key for name, spec in cls.__fields.items()}

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """{field name: its annotation, evaluated}, for code that walks the schema."""
        hints = typing.get_type_hints(cls, include_extras=True)
        return {name: hints[name] for name in cls.__fields}

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only (a validated profile section)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only (a validated profile section)")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash((type(self), _frozen(self.__dict__)))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={self.__dict__[n]!r}" for n in self.__fields if n in self.__dict__)
        return f"{type(self).__name__}({inner})"

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A copy with some fields replaced (not validated: for tests and derived records)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.__dict__.update(update or {})
        return clone

    def model_dump(
        self, *, mode: Literal["python", "json"] = "python", by_alias: bool = False
    ) -> Any:
        """Plain data: dicts and lists; with mode="json", addresses and other values as text
        (a secret as its redacted form), so evidence can hold it."""
        return _dump(self, mode == "json", by_alias)

    def interface_refs(self) -> dict[str, str]:
        """Interfaces this section names, as {key path: name}; each must be declared under
        the profile's top-level `interfaces:`. Areas that name interfaces override this."""
        return {}


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _dump(value: Any, json: bool, by_alias: bool) -> Any:
    if isinstance(value, Strict):
        keys = value.fields()
        return {
            (keys[n] if by_alias else n): _dump(v, json, by_alias) for n, v in vars(value).items()
        }
    if isinstance(value, dict):
        return {_dump(k, json, by_alias): _dump(v, json, by_alias) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dump(v, json, by_alias) for v in value]
    if not json or value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
