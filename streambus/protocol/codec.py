"""The one generic encoder/decoder for every generated Kafka message class.

This module owns the byte layout of Kafka messages (requests, responses, headers,
metadata and coordinator records) as described by the generated ``FIELDS`` tables.
It never does I/O and never knows what a message means.

Theory of operation
-------------------
Interpreting the field tables one field at a time costs tens of microseconds per
message in CPython. Instead, on first use of a (class, version) pair, this module
writes straight-line Python source for that pair, ``exec``s it and caches the two
functions. Nested structs are inlined as loops, consecutive fixed-width fields
(and the int16/int32 length prefixes that follow them) are packed or unpacked with
one precompiled ``struct.Struct``, and the empty tagged-field section of flexible
versions is folded into the same call. The tables stay data; the logic is here.

Wire rules (Kafka's ``clients/src/main/resources/common/message/README.md`` and the
protocol guide):

* Non-flexible versions: STRING has an int16 length, BYTES/RECORDS and ARRAY an
  int32 length; -1 means null where the field is nullable in that version.
* Flexible versions (``FLEXIBLE_MIN`` and above): COMPACT forms with an unsigned
  varint of length + 1 (0 = null), and a tagged-field section after every struct:
  uvarint count, then (uvarint tag, uvarint size, payload) per field. A tagged field
  is written only when it differs from its default; unknown tags are skipped.
* A field-level ``flexible_versions`` override (RequestHeader.ClientId) keeps a
  non-compact encoding inside a flexible message.
* Nullable structs (KIP-893) carry an int8 marker: -1 null, 1 present.
* A field absent in the target version must hold its default unless it is
  ignorable; otherwise encoding raises ``LocalProtocolError``. Decoding fills
  absent fields with defaults.
* ``records`` fields decode to a ``memoryview`` slice of the input (zero-copy, or
  ``None`` when null) and encode from any bytes-like object.

Decoding untrusted input raises only ``RemoteProtocolError``: every length is
checked against the bytes remaining before anything is allocated, and stray
``struct.error``/``IndexError``/``UnicodeDecodeError`` are converted at the entry
points. Encoding a value the wire cannot carry raises ``LocalProtocolError``.
"""

from __future__ import annotations

import dataclasses
import linecache
import struct
import sys
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from streambus.protocol.errors import LocalProtocolError, RemoteProtocolError
from streambus.protocol.primitives import ZERO_UUID, decode_uvarint, encode_uvarint

__all__ = [
    "ZERO_UUID",
    "decode",
    "decode_request",
    "decode_response",
    "encode",
    "encode_parts",
    "encode_request",
    "encode_response",
    "field_specs",
    "FieldSpec",
]

T = TypeVar("T")

_FIXED_FORMATS = {
    "bool": "?",
    "int8": "b",
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "float64": "d",
    "uuid": "16s",
}
_ZERO_UUID_BYTES = bytes(16)

# Records blobs at least this large are passed through as their own buffer by
# ``encode_parts`` instead of being copied into the message buffer.
RECORDS_SPLIT_BYTES = 1024

class _StructCache(dict):
    """Bound ``pack``/``unpack_from`` of ``struct.Struct(fmt % n)``, built on first use per n.

    Arrays of fixed-width values are packed in one call whose format depends on the
    array length; precompiling per length avoids re-parsing the format each time.
    Only small lengths are kept so a peer cannot grow the cache without bound.
    """

    def __init__(self, fmt: str, method: str) -> None:
        super().__init__()
        self.fmt = fmt
        self.method = method

    def __missing__(self, n: int) -> Callable[..., Any]:
        fn = getattr(struct.Struct(self.fmt % n), self.method)
        if n < 256:
            self[n] = fn
        return fn


class _FusedCache(dict):
    """``Struct(fmt % lengths).pack`` per tuple of variable lengths, built on first use."""

    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.fmt = fmt

    def __missing__(self, lengths: tuple[int, ...]) -> Callable[..., Any]:
        fn = struct.Struct(self.fmt % lengths).pack
        if len(self) < 4096:
            self[lengths] = fn
        return fn


_ARRAY_PACKERS: dict[tuple[str, bool], _StructCache] = {}
_ARRAY_UNPACKERS: dict[str, _StructCache] = {}


def _array_packer(fmt: str, compact: bool) -> _StructCache:
    """Packers of (length prefix, *values): B (length + 1) when compact, else int32."""
    key = (fmt, compact)
    cache = _ARRAY_PACKERS.get(key)
    if cache is None:
        cache = _ARRAY_PACKERS[key] = _StructCache((">B%d" if compact else ">i%d") + fmt, "pack")
    return cache


def _array_unpacker(fmt: str) -> _StructCache:
    cache = _ARRAY_UNPACKERS.get(fmt)
    if cache is None:
        cache = _ARRAY_UNPACKERS[fmt] = _StructCache(">%d" + fmt, "unpack_from")
    return cache


_DECODE_ERRORS = (struct.error, IndexError, ValueError, OverflowError, MemoryError)
_ENCODE_ERRORS = (struct.error, TypeError, AttributeError, ValueError, OverflowError, IndexError)


# --------------------------------------------------------------------------------------
# Field tables


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """One row of a generated ``FIELDS`` table, resolved against its classes."""

    attr: str
    type: str
    versions: tuple[int, int] | None
    nullable_versions: tuple[int, int] | None
    tagged_versions: tuple[int, int] | None
    tag: int | None
    ignorable: bool
    flexible_versions: tuple[int, int] | None
    element: str
    is_array: bool
    struct: type | None
    default: Any  # a fresh value; call default_factory() for mutable ones
    default_factory: Callable[[], Any] | None

    def present(self, version: int) -> bool:
        r = self.versions
        return r is not None and r[0] <= version <= r[1]

    def tagged(self, version: int) -> bool:
        r = self.tagged_versions
        return r is not None and r[0] <= version <= r[1]

    def nullable(self, version: int) -> bool:
        r = self.nullable_versions
        return r is not None and r[0] <= version <= r[1]

    def default_value(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default


_SPECS: dict[type, tuple[FieldSpec, ...]] = {}


def root_class(cls: type) -> type:
    """The top-level message class that holds ``cls`` (``cls`` itself for messages)."""
    head = cls.__qualname__.split(".")[0]
    root = getattr(sys.modules[cls.__module__], head)
    return root


def field_specs(cls: type) -> tuple[FieldSpec, ...]:
    """Resolved field table of a generated class (cached)."""
    specs = _SPECS.get(cls)
    if specs is not None:
        return specs
    root = root_class(cls)
    dc_fields = {f.name: f for f in dataclasses.fields(cls)}
    out = []
    for attr, ftype, versions, nullable, tagged, tag, ignorable, flexible in cls.FIELDS:
        is_array = ftype.startswith("[]")
        element = ftype[2:] if is_array else ftype
        struct_cls = None if element in _FIXED_FORMATS or element in ("string", "bytes", "records") else getattr(root, element)
        dc = dc_fields[attr]
        factory = None if dc.default_factory is dataclasses.MISSING else dc.default_factory
        default = None if factory is not None else dc.default
        out.append(
            FieldSpec(attr, ftype, versions, nullable, tagged, tag, ignorable, flexible, element, is_array, struct_cls, default, factory)
        )
    specs = tuple(out)
    _SPECS[cls] = specs
    return specs


def _is_flexible(cls: type, version: int) -> bool:
    first = root_class(cls).FLEXIBLE_MIN
    return first is not None and version >= first


# --------------------------------------------------------------------------------------
# Source generation


class _Source:
    """Accumulates generated lines and the constants they reference."""

    def __init__(self, version: int, flexible: bool) -> None:
        self.version = version
        self.flexible = flexible
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {
            "_new": object.__new__,
            "_uv_read": decode_uvarint,
            "_uv": encode_uvarint,
            "_uuid": uuid.UUID,
            "_ZERO_UUID": ZERO_UUID,
            "_ZERO_UUID_BYTES": _ZERO_UUID_BYTES,
            "_pack": struct.pack,
            "_unpack_from": struct.unpack_from,
            "_bad": _bad,
            "_absent": _absent,
            "_records_split": RECORDS_SPLIT_BYTES,
            "_str": str,
        }
        self.counter = 0
        self._consts: dict[Any, str] = {}
        self.uses_mv = False
        self.memoryview_input = False

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, value: Any, prefix: str = "K") -> str:
        key = (type(value), id(value)) if not isinstance(value, (int, str, bytes, float, bool, type(None))) else (type(value), value)
        name = self._consts.get(key)
        if name is None:
            name = self.name(prefix)
            self.ns[name] = value
            self._consts[key] = name
        return name

    def struct_const(self, fmt: str) -> tuple[str, int]:
        s = struct.Struct(">" + fmt)
        key = ("struct", fmt)
        name = self._consts.get(key)
        if name is None:
            name = self.name("S")
            self.ns[name] = s
            self._consts[key] = name
        return name, s.size

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def _bad(reason: str) -> RemoteProtocolError:
    return RemoteProtocolError(reason)


def _absent(attr: str, version: int) -> LocalProtocolError:
    return LocalProtocolError(f"field {attr!r} is set but version {version} cannot carry it")


def _literal(src: _Source, value: Any) -> str:
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return repr(value)
    return src.const(value)


def _compact(spec: FieldSpec, src: _Source) -> bool:
    if spec.flexible_versions is not None:
        r = spec.flexible_versions
        return r[0] <= src.version <= r[1]
    return src.flexible


# ---- encoder ------------------------------------------------------------------------


class _Run:
    """Pending fixed-width values to be packed with one Struct call."""

    def __init__(self) -> None:
        self.fmt: list[str] = []
        self.exprs: list[str] = []

    def add(self, fmt: str, expr: str | None) -> None:
        self.fmt.append(fmt)
        if expr is not None:
            self.exprs.append(expr)


class _Encoder:
    def __init__(self, src: _Source) -> None:
        self.src = src

    def flush(self, run: _Run, ind: int, buf: str) -> None:
        if not run.fmt:
            return
        if not run.exprs:  # only empty tagged-field sections
            zeros = len(run.fmt)
            self.src.emit(ind, f"{buf}.append(0)" if zeros == 1 else f"{buf} += {bytes(zeros)!r}")
            run.fmt.clear()
            return
        name, _ = self.src.struct_const("".join(run.fmt))
        self.src.emit(ind, f"{buf} += {name}.pack({', '.join(run.exprs)})")
        run.fmt.clear()
        run.exprs.clear()

    def write_len(self, ind: int, buf: str, expr: str, compact: bool, wide: bool) -> None:
        """Write a length (already +1 for compact) that may be -1/0 for null."""
        if compact:
            n = self.src.name("n")
            self.src.emit(ind, f"{n} = {expr}")
            self.src.emit(ind, f"if {n} < 128: {buf}.append({n})")
            self.src.emit(ind, f"else: {buf} += _uv({n})")
        else:
            self.src.emit(ind, f"{buf} += _pack({'>i' if wide else '>h'!r}, {expr})")

    def struct_body(self, cls: type, obj: str, ind: int, buf: str, run: _Run, parts: bool) -> None:
        src = self.src
        v = src.version
        tagged: list[FieldSpec] = []
        for spec in field_specs(cls):
            expr = f"{obj}.{spec.attr}"
            if not spec.present(v):
                if not spec.ignorable:
                    cond = self.nondefault(spec, expr)
                    src.emit(ind, f"if {cond}: raise _absent({spec.attr!r}, {v})")
                continue
            if spec.tagged(v):
                tagged.append(spec)
                continue
            self.field(spec, expr, ind, buf, run, parts)
        if not src.flexible:
            return
        if not tagged:
            run.add("x", None)  # empty tagged-field section: one zero byte
            return
        self.flush(run, ind, buf)
        count = src.name("tn")
        tbuf = src.name("tb")
        src.emit(ind, f"{count} = 0")
        src.emit(ind, f"{tbuf} = bytearray()")
        for spec in sorted(tagged, key=lambda s: s.tag):
            expr = f"{obj}.{spec.attr}"
            src.emit(ind, f"if {self.nondefault(spec, expr)}:")
            fbuf = src.name("fb")
            src.emit(ind + 1, f"{count} += 1")
            src.emit(ind + 1, f"{fbuf} = bytearray()")
            inner = _Run()
            self.field(spec, expr, ind + 1, fbuf, inner, False)
            self.flush(inner, ind + 1, fbuf)
            src.emit(ind + 1, f"{tbuf} += _uv({spec.tag}); {tbuf} += _uv(len({fbuf})); {tbuf} += {fbuf}")
        src.emit(ind, f"{buf} += _uv({count}); {buf} += {tbuf}")

    def nondefault(self, spec: FieldSpec, expr: str) -> str:
        default = spec.default_value()
        if default is None:
            return f"{expr} is not None"
        if spec.is_array:
            return f"{expr}"  # default is the empty list
        if spec.struct is not None:
            inner = []
            for sub in field_specs(spec.struct):
                if sub.is_array or sub.struct is not None or sub.default_factory is not None:
                    return f"{expr} != {self.src.const(default)}"
                inner.append(f"{expr}.{sub.attr} != {_literal(self.src, sub.default)}")
            if spec.nullable_versions is not None:
                inner.insert(0, f"{expr} is None")
            return "(" + " or ".join(inner) + ")" if inner else "False"
        return f"{expr} != {_literal(self.src, default)}"

    def field(self, spec: FieldSpec, expr: str, ind: int, buf: str, run: _Run, parts: bool) -> None:
        src = self.src
        v = src.version
        nullable = spec.nullable(v)
        compact = _compact(spec, src)
        element = spec.element
        if not spec.is_array and spec.struct is None:
            fmt = _FIXED_FORMATS.get(element)
            if fmt is not None:
                run.add(fmt, f"{expr}.bytes" if element == "uuid" else expr)
                return
            self.blob(element, expr, ind, buf, run, nullable, compact, parts)
            return
        if not spec.is_array:  # a single struct
            x = src.name("s")
            src.emit(ind, f"{x} = {expr}")
            if nullable:
                self.flush(run, ind, buf)
                src.emit(ind, f"if {x} is None: {buf}.append(255)")
                src.emit(ind, "else:")
                src.emit(ind + 1, f"{buf}.append(1)")
                inner = _Run()
                self.struct_body(spec.struct, x, ind + 1, buf, inner, parts)
                self.flush(inner, ind + 1, buf)
            else:
                self.struct_body(spec.struct, x, ind, buf, run, parts)
            return
        # arrays
        x = src.name("l")
        src.emit(ind, f"{x} = {expr}")
        body = ind
        if nullable:
            self.flush(run, ind, buf)
            null = b"\x00" if compact else b"\xff\xff\xff\xff"
            src.emit(ind, f"if {x} is None: {buf} += {null!r}")
            src.emit(ind, "else:")
            body = ind + 1
        fmt = _FIXED_FORMATS.get(element)
        if fmt is not None and element != "uuid":
            # Length prefix and values in one call, with a Struct cached per length.
            self.flush(run, body, buf)
            packer = src.const(_array_packer(fmt, compact), "AP")
            n = src.name("n")
            src.emit(body, f"{n} = len({x})")
            if compact:
                src.emit(body, f"if {n} < 127: {buf} += {packer}[{n}]({n} + 1, *{x})")
                src.emit(body, f"else: {buf} += _uv({n} + 1); {buf} += _pack('>%d{fmt}' % {n}, *{x})")
            else:
                src.emit(body, f"{buf} += {packer}[{n}]({n}, *{x})")
            return
        if compact:
            self.flush(run, body, buf)
            self.write_len(body, buf, f"len({x}) + 1", True, True)
        else:
            run.add("i", f"len({x})")
            self.flush(run, body, buf)
        item = src.name("o")
        src.emit(body, f"for {item} in {x}:")
        inner = _Run()
        if element == "uuid":
            inner.add("16s", f"{item}.bytes")
        elif spec.struct is None:
            self.blob(element, item, body + 1, buf, inner, False, compact, parts)
        elif self.fusable(spec.struct):
            self.fused_body(spec.struct, item, body + 1, buf, parts)
        else:
            self.struct_body(spec.struct, item, body + 1, buf, inner, parts)
        self.flush(inner, body + 1, buf)

    def fusable(self, cls: type) -> bool:
        """True when every element field fits one Struct whose format depends only on lengths."""
        v = self.src.version
        variable = False
        for spec in field_specs(cls):
            if not spec.present(v):
                continue
            if spec.tagged(v) or spec.nullable(v):
                return False
            fmt = _FIXED_FORMATS.get(spec.element)
            if spec.is_array:
                if fmt is None or spec.element == "uuid":
                    return False
                variable = True
            elif spec.element == "string":
                variable = True
            elif fmt is None:
                return False
        return variable

    def fused_body(self, cls: type, obj: str, ind: int, buf: str, parts: bool) -> None:
        """Encode a struct element with one pack call; the format is cached per length tuple.

        Array elements such as Metadata partitions repeat many times per response, and
        one call per element (instead of one per field group) is what makes them cheap.
        """
        src = self.src
        v = src.version
        fmt = ""
        args: list[str] = []
        keys: list[str] = []
        guards: list[str] = []
        for spec in field_specs(cls):
            expr = f"{obj}.{spec.attr}"
            if not spec.present(v):
                if not spec.ignorable:
                    src.emit(ind, f"if {self.nondefault(spec, expr)}: raise _absent({spec.attr!r}, {v})")
                continue
            compact = _compact(spec, src)
            element_fmt = _FIXED_FORMATS.get(spec.element)
            if spec.is_array or spec.element == "string":
                value, n = src.name("v"), src.name("n")
                if spec.is_array:
                    src.emit(ind, f"{value} = {expr}; {n} = len({value})")
                    piece, tail = f"%d{element_fmt}", f"*{value}"
                else:
                    src.emit(ind, f"{value} = {expr}.encode(); {n} = len({value})")
                    piece, tail = "%ds", value
                if compact:
                    fmt += "B" + piece
                    args += [f"{n} + 1", tail]
                    guards.append(f"{n} < 127")
                else:
                    fmt += ("h" if spec.element == "string" else "i") + piece
                    args += [n, tail]
                keys.append(n)
            else:
                fmt += element_fmt
                args.append(f"{expr}.bytes" if spec.element == "uuid" else expr)
        if src.flexible:
            fmt += "x"
        cache = src.const(_FusedCache(">" + fmt), "FC")
        call = f"{buf} += {cache}[({', '.join(keys)},)]({', '.join(args)})"
        if not guards:
            src.emit(ind, call)
            return
        src.emit(ind, f"if {' and '.join(guards)}: {call}")
        src.emit(ind, "else:")
        inner = _Run()
        self.struct_body(cls, obj, ind + 1, buf, inner, parts)
        self.flush(inner, ind + 1, buf)

    def blob(self, element: str, expr: str, ind: int, buf: str, run: _Run, nullable: bool, compact: bool, parts: bool) -> None:
        """string / bytes / records."""
        src = self.src
        x = src.name("b")
        wide = element != "string"
        to_bytes = f"{expr}.encode()" if element == "string" else expr
        if not nullable and not compact:
            # Fold the length prefix into the pending fixed-width run.
            src.emit(ind, f"{x} = {to_bytes}")
            run.add("i" if wide else "h", f"len({x})")
            self.flush(run, ind, buf)
            self.append_blob(element, x, ind, buf, parts)
            return
        self.flush(run, ind, buf)
        if nullable:
            null = b"\x00" if compact else (b"\xff\xff\xff\xff" if wide else b"\xff\xff")
            src.emit(ind, f"{x} = {expr}")
            src.emit(ind, f"if {x} is None: {buf} += {null!r}")
            src.emit(ind, "else:")
            ind += 1
            if element == "string":
                src.emit(ind, f"{x} = {x}.encode()")
        else:
            src.emit(ind, f"{x} = {to_bytes}")
        self.write_len(ind, buf, f"len({x}) + 1" if compact else f"len({x})", compact, wide)
        self.append_blob(element, x, ind, buf, parts)

    def append_blob(self, element: str, x: str, ind: int, buf: str, parts: bool) -> None:
        if element == "records" and parts and buf == "buf":
            # Large record batches become their own output buffer: no copy here.
            self.src.emit(ind, f"if len({x}) >= _records_split: parts.append(buf); parts.append({x}); buf = bytearray()")
            self.src.emit(ind, f"else: buf += {x}")
        else:
            self.src.emit(ind, f"{buf} += {x}")


# ---- decoder ------------------------------------------------------------------------


class _DRun:
    """Pending fixed-width reads: (format, target, uuid conversion target)."""

    def __init__(self) -> None:
        self.fmt: list[str] = []
        self.targets: list[str] = []
        self.post: list[str] = []

    def add(self, fmt: str, target: str) -> None:
        self.fmt.append(fmt)
        self.targets.append(target)


class _Decoder:
    def __init__(self, src: _Source) -> None:
        self.src = src

    def flush(self, run: _DRun, ind: int) -> None:
        if not run.fmt:
            return
        name, size = self.src.struct_const("".join(run.fmt))
        targets = ", ".join(run.targets) + ("," if len(run.targets) == 1 else "")
        self.src.emit(ind, f"{targets} = {name}.unpack_from(data, pos); pos += {size}")
        for line in run.post:
            self.src.emit(ind, line)
        run.fmt.clear()
        run.targets.clear()
        run.post.clear()

    def read_uvarint(self, ind: int, target: str) -> None:
        self.src.emit(ind, f"{target} = data[pos]")
        self.src.emit(ind, f"if {target} < 128: pos += 1")
        self.src.emit(ind, f"else: {target}, pos = _uv_read(data, pos)")

    def default_expr(self, spec: FieldSpec) -> str:
        if spec.default_factory is not None:
            if spec.is_array:
                return "[]"
            return f"{self.src.const(spec.default_factory)}()"
        return _literal(self.src, spec.default)

    def struct_body(self, cls: type, obj: str, ind: int, run: _DRun) -> None:
        src = self.src
        v = src.version
        tagged: list[FieldSpec] = []
        for spec in field_specs(cls):
            if not spec.present(v):
                src.emit(ind, f"{obj}.{spec.attr} = {self.default_expr(spec)}")
                continue
            if spec.tagged(v):
                tagged.append(spec)
                continue
            self.field(spec, f"{obj}.{spec.attr}", ind, run)
        if not src.flexible:
            return
        for spec in tagged:
            src.emit(ind, f"{obj}.{spec.attr} = {self.default_expr(spec)}")
        count = src.name("tc")
        if run.fmt:
            run.add("B", count)
            self.flush(run, ind)
        else:
            src.emit(ind, f"{count} = data[pos]; pos += 1")
        src.emit(ind, f"if {count}:")
        ind += 1
        # Re-read the count as a varint: it only fit the fast path when < 128.
        src.emit(ind, f"{count}, pos = _uv_read(data, pos - 1)")
        tag, size, tend = src.name("tg"), src.name("sz"), src.name("te")
        src.emit(ind, f"for _ in range({count}):")
        ind += 1
        src.emit(ind, f"{tag}, pos = _uv_read(data, pos)")
        src.emit(ind, f"{size}, pos = _uv_read(data, pos)")
        src.emit(ind, f"{tend} = pos + {size}")
        src.emit(ind, f"if {tend} > end: raise _bad('tagged field overruns the buffer')")
        keyword = "if"
        for spec in sorted(tagged, key=lambda s: s.tag):
            src.emit(ind, f"{keyword} {tag} == {spec.tag}:")
            inner = _DRun()
            self.field(spec, f"{obj}.{spec.attr}", ind + 1, inner)
            self.flush(inner, ind + 1)
            src.emit(ind + 1, f"if pos > {tend}: raise _bad('tagged field longer than its size')")
            keyword = "elif"
        src.emit(ind, f"pos = {tend}")

    def length(self, ind: int, run: _DRun, compact: bool, wide: bool) -> str:
        """Read a length prefix; returns the variable holding it (-1 = null)."""
        n = self.src.name("n")
        if compact:
            self.flush(run, ind)
            self.read_uvarint(ind, n)
            self.src.emit(ind, f"{n} -= 1")
        else:
            run.add("i" if wide else "h", n)
            self.flush(run, ind)
        return n

    def field(self, spec: FieldSpec, target: str, ind: int, run: _DRun) -> None:
        src = self.src
        v = src.version
        nullable = spec.nullable(v)
        compact = _compact(spec, src)
        element = spec.element
        if not spec.is_array and spec.struct is None:
            fmt = _FIXED_FORMATS.get(element)
            if fmt is None:
                self.blob(element, target, ind, run, nullable, compact)
            elif element == "uuid":
                raw = src.name("u")
                run.add(fmt, raw)
                run.post.append(f"{target} = _ZERO_UUID if {raw} == _ZERO_UUID_BYTES else _uuid(bytes={raw})")
            else:
                run.add(fmt, target)
            return
        if not spec.is_array:
            x = src.name("s")
            if nullable:
                marker = src.name("m")
                run.add("b", marker)
                self.flush(run, ind)
                src.emit(ind, f"if {marker} < 0: {target} = None")
                src.emit(ind, "else:")
                src.emit(ind + 1, f"{x} = _new({src.const(spec.struct)}); {target} = {x}")
                inner = _DRun()
                self.struct_body(spec.struct, x, ind + 1, inner)
                self.flush(inner, ind + 1)
            else:
                src.emit(ind, f"{x} = _new({src.const(spec.struct)}); {target} = {x}")
                self.struct_body(spec.struct, x, ind, run)
            return
        # arrays
        n = self.length(ind, run, compact, True)
        src.emit(ind, f"if {n} < 0:")
        if nullable:
            src.emit(ind + 1, f"{target} = None")
        else:
            src.emit(ind + 1, "raise _bad('negative array length')")
        fmt = _FIXED_FORMATS.get(element)
        if fmt is not None and element != "uuid":
            size = struct.calcsize(">" + fmt)
            src.emit(ind, f"elif {n} * {size} > end - pos: raise _bad('array longer than the buffer')")
            src.emit(ind, "else:")
            unpacker = src.const(_array_unpacker(fmt), "AU")
            src.emit(ind + 1, f"{target} = list({unpacker}[{n}](data, pos)); pos += {n} * {size}")
            return
        src.emit(ind, f"elif {n} > end - pos: raise _bad('array longer than the buffer')")
        src.emit(ind, "else:")
        lst = src.name("l")
        src.emit(ind + 1, f"{lst} = []")
        src.emit(ind + 1, f"for _ in range({n}):")
        body = ind + 2
        inner = _DRun()
        if element == "uuid":
            raw = src.name("u")
            inner.add("16s", raw)
            self.flush(inner, body)
            src.emit(body, f"{lst}.append(_ZERO_UUID if {raw} == _ZERO_UUID_BYTES else _uuid(bytes={raw}))")
        elif spec.struct is None:
            item = src.name("e")
            self.blob(element, item, body, inner, False, compact)
            src.emit(body, f"{lst}.append({item})")
        else:
            item = src.name("o")
            src.emit(body, f"{item} = _new({src.const(spec.struct)}); {lst}.append({item})")
            self.struct_body(spec.struct, item, body, inner)
            self.flush(inner, body)
        src.emit(ind + 1, f"{target} = {lst}")

    def blob(self, element: str, target: str, ind: int, run: _DRun, nullable: bool, compact: bool) -> None:
        src = self.src
        n = self.length(ind, run, compact, element != "string")
        e = src.name("e")
        if element == "string":
            # memoryview has no .decode(); str() accepts any buffer but is slower.
            value = f"_str(data[pos:{e}], 'utf-8')" if src.memoryview_input else f"data[pos:{e}].decode()"
        elif element == "bytes":
            value = f"bytes(data[pos:{e}])"
        else:
            src.uses_mv = True
            value = f"mv[pos:{e}]"
        if nullable:
            src.emit(ind, f"if {n} < 0: {target} = None")
            src.emit(ind, "else:")
            ind += 1
        else:
            src.emit(ind, f"if {n} < 0: raise _bad('negative length')")
        src.emit(ind, f"{e} = pos + {n}")
        src.emit(ind, f"if {e} > end: raise _bad('length exceeds the buffer')")
        src.emit(ind, f"{target} = {value}; pos = {e}")


# --------------------------------------------------------------------------------------
# Compilation and caches


_ENCODERS: dict[tuple[type, int], Callable[..., Any]] = {}
_DECODERS: dict[tuple[type, int, bool], Callable[..., Any]] = {}


def _check_version(cls: type, version: int, error: type[Exception]) -> None:
    low, high = root_class(cls).VALID_VERSIONS
    if not low <= version <= high:
        raise error(f"{cls.__qualname__} has no version {version} (valid {low}-{high})")


def _finish(src: _Source, name: str, header: str, cls: type, kind: str) -> Callable[..., Any]:
    filename = f"<streambus.codec {kind} {cls.__qualname__} v{src.version}>"
    text = header + "\n" + "\n".join(src.lines) + "\n"
    code = compile(text, filename, "exec")
    exec(code, src.ns)
    # Let tracebacks show the generated lines.
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    return src.ns[name]


def compile_encoder(cls: type, version: int) -> Callable[[bytearray, list, Any], bytearray]:
    """Build (and cache) ``fn(buf, parts, msg) -> buf`` for one class and version."""
    key = (cls, version)
    fn = _ENCODERS.get(key)
    if fn is not None:
        return fn
    _check_version(cls, version, LocalProtocolError)
    src = _Source(version, _is_flexible(cls, version))
    encoder = _Encoder(src)
    run = _Run()
    encoder.struct_body(cls, "o", 1, "buf", run, True)
    encoder.flush(run, 1, "buf")
    src.emit(1, "return buf")
    fn = _finish(src, "_encode", "def _encode(buf, parts, o):", cls, "encode")
    _ENCODERS[key] = fn
    return fn


def compile_decoder(cls: type, version: int, memoryview_input: bool = False) -> Callable[[Any, int, int], tuple[Any, int]]:
    """Build (and cache) ``fn(data, pos, end) -> (msg, pos)`` for one class and version.

    ``memoryview_input`` selects the variant for memoryview buffers (bytes and
    bytearray share the other one).
    """
    key = (cls, version, memoryview_input)
    fn = _DECODERS.get(key)
    if fn is not None:
        return fn
    _check_version(cls, version, RemoteProtocolError)
    src = _Source(version, _is_flexible(cls, version))
    src.memoryview_input = memoryview_input
    decoder = _Decoder(src)
    run = _DRun()
    src.emit(1, f"o = _new({src.const(cls)})")
    decoder.struct_body(cls, "o", 1, run)
    decoder.flush(run, 1)
    src.emit(1, "return o, pos")
    if src.uses_mv:
        src.lines.insert(0, "    mv = memoryview(data)")
    fn = _finish(src, "_decode", "def _decode(data, pos, end):", cls, "decode")
    _DECODERS[key] = fn
    return fn


def generated_source(cls: type, version: int, kind: str = "decode") -> str:
    """The generated Python source for one class/version (for debugging and review)."""
    fn = compile_decoder(cls, version) if kind == "decode" else compile_encoder(cls, version)
    filename = fn.__code__.co_filename
    return "".join(linecache.cache[filename][2])


# --------------------------------------------------------------------------------------
# Public API


def encode_parts(msg: Any, version: int) -> list[bytes | bytearray | memoryview]:
    """Encode ``msg`` at ``version`` as a list of buffers whose concatenation is the message.

    Large ``records`` blobs are returned as their own buffer rather than copied, so a
    writer can hand the list to ``writelines`` without touching the record batches.

    Raises:
        LocalProtocolError: the version is out of range, a non-ignorable field this
            version lacks is set, or a value does not fit its wire type.
    """
    cls = type(msg)
    fn = _ENCODERS.get((cls, version)) or compile_encoder(cls, version)
    parts: list[bytes | bytearray | memoryview] = []
    try:
        buf = fn(bytearray(), parts, msg)
    except LocalProtocolError:
        raise
    except _ENCODE_ERRORS as exc:
        raise LocalProtocolError(f"cannot encode {cls.__qualname__} v{version}: {exc}") from exc
    parts.append(buf)
    return parts


def encode(msg: Any, version: int) -> bytes:
    """Encode one generated message (or struct) at ``version``.

    Args:
        msg: an instance of a generated class.
        version: the message version; must be in the class's ``VALID_VERSIONS``.

    Returns:
        The encoded body (no size prefix, no header).

    Raises:
        LocalProtocolError: the version is out of range, a non-ignorable field this
            version lacks is set, or a value does not fit its wire type.
    """
    cls = type(msg)
    fn = _ENCODERS.get((cls, version)) or compile_encoder(cls, version)
    parts: list[bytes | bytearray | memoryview] = []
    try:
        buf = fn(bytearray(), parts, msg)
    except LocalProtocolError:
        raise
    except _ENCODE_ERRORS as exc:
        raise LocalProtocolError(f"cannot encode {cls.__qualname__} v{version}: {exc}") from exc
    if parts:
        parts.append(buf)
        return b"".join(parts)
    return bytes(buf)


def decode(cls: type[T], version: int, data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[T, int]:
    """Decode one ``cls`` at ``version`` from ``data[offset:]``.

    ``records`` fields in the result are memoryview slices of ``data``; keep ``data``
    unchanged while they are in use.

    Returns:
        ``(message, end_offset)``: the offset just past the decoded message.

    Raises:
        RemoteProtocolError: the bytes are truncated or malformed, or the version is
            not one the class knows.
    """
    is_mv = type(data) is memoryview
    fn = _DECODERS.get((cls, version, is_mv)) or compile_decoder(cls, version, is_mv)
    try:
        return fn(data, offset, len(data))
    except RemoteProtocolError:
        raise
    except _DECODE_ERRORS as exc:
        raise RemoteProtocolError(f"malformed {cls.__qualname__} v{version}: {exc}") from exc


_TABLES: dict[str, dict[int, type]] = {}


def _message_class(table_name: str, api_key: int, error: type[Exception]) -> type:
    table = _TABLES.get(table_name)
    if table is None:
        # Imported lazily: loading every message module is the slow part of startup.
        from streambus.protocol import messages

        table = _TABLES[table_name] = getattr(messages, table_name)
    cls = table.get(api_key)
    if cls is None:
        raise error(f"unknown api key {api_key}")
    return cls


def encode_request(api_key: int, version: int, msg: Any) -> bytes:
    """Encode a request body (no header). ``msg`` must be the api key's request class."""
    cls = _message_class("REQUESTS", api_key, LocalProtocolError)
    if type(msg) is not cls:
        raise LocalProtocolError(f"api key {api_key} expects {cls.__qualname__}, got {type(msg).__qualname__}")
    return encode(msg, version)


def encode_response(api_key: int, version: int, msg: Any) -> bytes:
    """Encode a response body (no header). ``msg`` must be the api key's response class."""
    cls = _message_class("RESPONSES", api_key, LocalProtocolError)
    if type(msg) is not cls:
        raise LocalProtocolError(f"api key {api_key} expects {cls.__qualname__}, got {type(msg).__qualname__}")
    return encode(msg, version)


def decode_request(api_key: int, version: int, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
    """Decode a request body that starts at ``data[offset]``.

    Raises:
        RemoteProtocolError: unknown api key, unknown version, or malformed bytes.
    """
    return decode(_message_class("REQUESTS", api_key, RemoteProtocolError), version, data, offset)[0]


def decode_response(api_key: int, version: int, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
    """Decode a response body that starts at ``data[offset]``.

    Raises:
        RemoteProtocolError: unknown api key, unknown version, or malformed bytes.
    """
    return decode(_message_class("RESPONSES", api_key, RemoteProtocolError), version, data, offset)[0]
