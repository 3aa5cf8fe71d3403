"""Strict, safe YAML reading for untrusted files (rule files, answers files).

PyYAML's ``safe_load`` constructs no objects, but it still keeps the last of two duplicate
keys, expands aliases (the "billion laughs"), turns ``2024-01-05`` into a date and ``010``
into 8. This reader composes the document with the safe (C when present) loader and builds
plain data itself, so it can refuse all of that and remember where every value came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

try:  # the C loader is several times faster; fall back where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 40
# Bounds that keep any file cheap to refuse (the promise: under 2 s and 200 MB for any input).
# The bundled rules.yaml, the largest file shipped, is about 1,800 YAML events.
MAX_EVENTS = 20_000
MAX_NUMBER_CHARS = 100  # a number longer than this is a mistake (and Python's int() refuses 4,300 digits)

_STD = "tag:yaml.org,2002:"
_BOOL_WORDS = {"true", "false", "True", "False", "TRUE", "FALSE"}
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9_]+$")
# Control characters a terminal acts on (ESC starts colour, cursor and OSC 8 link sequences, BEL
# rings, C1 controls do the same on some terminals); YAML lets a quoted "\e" or "\x07" write them.
_YAML11_FORM = re.compile(r"[-+]?(?:0[xXbB]|[0-9.]*_)")  # 0x50 is 80, 0b101 is 5, 1_000 is 1000 in YAML 1.1
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_constructor = yaml.constructor.SafeConstructor()


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column in a file."""

    line: int
    column: int
    path: str = ""  # the file, where a document is built from several (a rule file's layers)


@dataclass
class Document:
    """Plain data read from a YAML file, with the location of every mapping key and value."""

    data: Any
    path: str
    marks: dict[tuple, Mark] = field(default_factory=dict)
    key_marks: dict[tuple, Mark] = field(default_factory=dict)
    raw: dict[tuple, str] = field(default_factory=dict)

    def mark(self, ypath: tuple) -> Mark:
        """The location of the value at ``ypath``, or of its nearest located parent."""
        while ypath not in self.marks and ypath:
            ypath = ypath[:-1]
        return self.marks.get(ypath, Mark(1, 1, self.path))


class YamlProblem(Exception):
    """A file that cannot be read as strict YAML; carries where and why."""

    def __init__(self, path: str, mark: Mark | None, code: str, message: str):
        self.path, self.mark, self.code, self.message = path, mark, code, message
        super().__init__(self.format())

    def format(self) -> str:
        where = f"{self.path}:{self.mark.line}:{self.mark.column}" if self.mark else self.path
        return f"{where}: error[{self.code}]: {self.message}"


def read_text(path: str, *, what: str, limit: int = MAX_BYTES) -> str:
    """Read a UTF-8 text file of at most ``limit`` bytes, or raise YamlProblem saying why not.

    Only a regular file is read: a FIFO would block the open (or the read) for good and a device
    such as /dev/zero never ends, so the file's type is checked on the opened descriptor (opened
    without blocking) before a byte is read."""
    import os
    import stat

    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise YamlProblem(path, None, "not-found", f"no {what} at this path") from None
    except PermissionError:
        raise YamlProblem(path, None, "unreadable", f"the {what} cannot be read (permission denied)") from None
    except OSError as error:
        raise YamlProblem(path, None, "unreadable", f"the {what} cannot be read ({error.strerror or error})") from None
    except ValueError:  # a NUL byte in the path
        raise YamlProblem(repr(path), None, "bad-path", f"the {what} path contains a NUL byte") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise YamlProblem(path, None, "not-a-file", f"the {what} is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise YamlProblem(path, None, "not-a-file", f"the {what} is not a regular file (a FIFO, device or "
                                                        "socket cannot be read safely); save it to a file first")
        with os.fdopen(descriptor, "rb") as handle:
            descriptor = -1  # the file object owns it now
            data = handle.read(limit + 1)
    except OSError as error:
        raise YamlProblem(path, None, "unreadable", f"the {what} cannot be read ({error.strerror or error})") from None
    finally:
        if descriptor >= 0:
            os.close(descriptor)
    if len(data) > limit:
        raise YamlProblem(path, None, "too-large", f"the {what} is larger than {size_text(limit)}")
    return decode(data, path, what)


def size_text(count: int) -> str:
    """1048576 -> '1 MiB', 262144 -> '256 KiB'."""
    if count >= 1024 * 1024 and count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB"
    if count >= 1024:
        return f"{count // 1024} KiB"
    return f"{count} bytes"


def decode(data: bytes, path: str, what: str) -> str:
    """Decode bytes as UTF-8 text, refusing binary content."""
    if b"\x00" in data:
        raise YamlProblem(path, None, "binary", f"the {what} is a binary file, not YAML text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise YamlProblem(path, None, "encoding", f"the {what} is not UTF-8 text (byte {error.start})") from None


def parse(text: str, path: str) -> Document:
    """Parse one YAML document strictly into plain data with locations."""
    try:
        _check_size(text, path)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Mark(mark.line + 1, mark.column + 1, path) if mark else None
        message = " ".join(part for part in (error.context, error.problem) if part) or "invalid YAML"
        raise YamlProblem(path, where, "syntax", message) from None
    except yaml.YAMLError as error:
        raise YamlProblem(path, None, "syntax", str(error).splitlines()[0]) from None
    except RecursionError:
        raise YamlProblem(path, None, "too-deep", f"nesting deeper than {MAX_DEPTH} levels") from None
    document = Document(data=None, path=path)
    if node is None:
        return document
    document.data = _Builder(document).build(node, (), 0)
    return document


def _check_size(text: str, path: str) -> None:
    """Refuse a document with too many values or too deep a nesting before building any of it.

    Building a node costs far more than reading its event (a 1 MB flow list of one-digit items
    is 500,000 nodes and hundreds of MB), so the events are counted first, streamed and dropped."""
    depth = 0
    for count, event in enumerate(yaml.parse(text, Loader=_Loader)):
        if count > MAX_EVENTS:
            mark = event.start_mark
            raise YamlProblem(path, Mark(mark.line + 1, mark.column + 1, path), "too-large",
                              f"more than {MAX_EVENTS:,} values, keys and collections; a rule or answers file is "
                              "far smaller (split it, or remove what was pasted by mistake)")
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise YamlProblem(path, Mark(mark.line + 1, mark.column + 1, path), "too-deep",
                                  f"nesting deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def load(path: str, *, what: str, limit: int = MAX_BYTES) -> Document:
    """Read and parse a YAML (or JSON) file strictly."""
    return parse(read_text(path, what=what, limit=limit), path)


class _Builder:
    def __init__(self, document: Document):
        self.document = document
        self.seen: set[int] = set()

    def problem(self, node, code: str, message: str) -> YamlProblem:
        return YamlProblem(self.document.path, _mark(node, self.document.path), code, message)

    def build(self, node, ypath: tuple, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.problem(node, "too-deep", f"nesting deeper than {MAX_DEPTH} levels")
        if id(node) in self.seen:
            # a node reached twice was referenced through an alias
            raise self.problem(node, "alias", "anchors and aliases (&name, *name) are not allowed; write the value out")
        self.seen.add(id(node))
        self.document.marks[ypath] = _mark(node, self.document.path)
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, ypath, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _STD + "seq":
                raise self.problem(node, "tag", f"the tag {node.tag!r} is not allowed")
            return [self.build(item, ypath + (index,), depth + 1) for index, item in enumerate(node.value)]
        return self.scalar(node, ypath)

    def mapping(self, node, ypath: tuple, depth: int) -> dict:
        if node.tag != _STD + "map":
            raise self.problem(node, "tag", f"the tag {node.tag!r} is not allowed")
        result: dict = {}
        first_seen: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.problem(key_node, "key", "mapping keys must be plain text")
            if key_node.tag == _STD + "merge":
                raise self.problem(key_node, "alias", "merge keys (<<) are not allowed; write the values out")
            if id(key_node) in self.seen:  # a key reused (as a key or a value) through an alias
                raise self.problem(key_node, "alias", "anchors and aliases (&name, *name) are not allowed; write the value out")
            self.seen.add(id(key_node))
            key = self.scalar(key_node, ypath + ("<key>",))
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                key = key_node.value
            if key in result:
                first = first_seen[key]
                raise self.problem(key_node, "duplicate-key", f"duplicate key {key!r} (first at line {first.line})")
            first_seen[key] = _mark(key_node, self.document.path)
            self.document.key_marks[ypath + (key,)] = _mark(key_node, self.document.path)
            result[key] = self.build(value_node, ypath + (key,), depth + 1)
        return result

    def scalar(self, node, ypath: tuple) -> Any:
        tag = node.tag
        self.document.raw[ypath] = node.value
        if tag == _STD + "str" or tag == _STD + "timestamp":
            found = _CONTROL.search(node.value)
            if found:
                raise self.problem(node, "control-character",
                                   f"the text holds the control character {found.group(0)!r} (a terminal would act on it: "
                                   "clear the screen, hide a link); remove it")
            return node.value  # dates stay strings
        if tag == _STD + "null":
            return None
        if tag == _STD + "bool":
            if node.value not in _BOOL_WORDS:
                raise self.problem(node, "yaml11-bool", f"{node.value!r} reads as a YES/NO value in YAML 1.1; write true or false, or quote it")
            return node.value.lower() == "true"
        if tag == _STD + "int" or tag == _STD + "float":
            return self.number(node)
        raise self.problem(node, "tag", f"the tag {tag!r} is not allowed")

    def number(self, node) -> Any:
        """An int or float scalar (plain, or tagged !!int / !!float), checked before PyYAML's
        constructors see it: they raise on '0x_', '!!int abc' or 4,400 digits."""
        text = node.value
        shown = text if len(text) <= 40 else f"{text[:32]}... ({len(text)} characters)"
        if len(text) > MAX_NUMBER_CHARS:
            raise self.problem(node, "bad-number", f"a number of {len(text)} characters is longer than any value "
                                                   "a rule or an answer needs; shorten it, or quote it if it is text")
        if _LEADING_ZERO.match(text):
            raise self.problem(node, "yaml11-octal", f"{shown!r} has a leading zero (YAML 1.1 reads it as octal); remove the zero or quote it")
        if _YAML11_FORM.match(text):
            raise self.problem(node, "yaml11-number", f"{shown!r} is a YAML 1.1 number form (hexadecimal, binary or "
                                                      "with '_' between digits) that reads as another value; write "
                                                      "the plain number, or quote it if it is text")
        if ":" in text:
            raise self.problem(node, "yaml11-sexagesimal", f"{shown!r} reads as a base-60 number in YAML 1.1 "
                                                           "(1:20 is 80); quote it, or write the number")
        kind = "whole number" if node.tag == _STD + "int" else "number"
        try:
            if node.tag == _STD + "int":
                return _constructor.construct_yaml_int(node)
            return _constructor.construct_yaml_float(node)
        except (ValueError, OverflowError, TypeError, IndexError):  # IndexError: !!int ''
            raise self.problem(node, "bad-number", f"{shown!r} is not a {kind}; write it like 12 or 12.5, "
                                                   "or quote it if it is text") from None


def _mark(node, path: str) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1, path)
