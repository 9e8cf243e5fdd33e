"""Constant folding of the string building attackers use to hide names and payloads.

Only ever evaluates a closed set of pure operations on values already known (literals and
names bound to them): concatenation, repetition, %-formatting and str.format, joins, slicing,
chr() and integer arithmetic, bytes.fromhex, rot13, and the decoders (base64 family, hex,
zlib, lzma, bz2, gzip). Decoding is capped by the budget; marshal is recognised, never loaded.
Nothing from the sample is compiled or run.
"""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import codecs
import lzma
import zlib

from .budget import Budget

NO = object()   # "not a known constant"

MAX_STR = 1 << 20          # a folded value longer than this is not followed
MAX_SEQ = 100_000          # elements of a folded list

DECODERS = frozenset({
    "base64.b64decode", "base64.b32decode", "base64.b16decode", "base64.b85decode",
    "base64.a85decode", "base64.urlsafe_b64decode", "base64.standard_b64decode",
    "base64.decodebytes", "base64.decodestring", "binascii.unhexlify", "binascii.a2b_base64",
    "binascii.a2b_hex", "bytes.fromhex", "codecs.decode", "zlib.decompress", "lzma.decompress",
    "bz2.decompress", "gzip.decompress", "marshal.loads",
})


class DecodeBudget:
    def __init__(self, budget: Budget) -> None:
        self.left = budget.max_decoded_bytes
        self.exhausted = False

    def take(self, data: bytes | str) -> bool:
        self.left -= len(data)
        if self.left < 0:
            self.exhausted = True
            return False
        return True

    @property
    def cap(self) -> int:
        return max(self.left, 0)


def _as_bytes(value: object) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass")
    return None


def decode(func: str, value: object, extra: list[object], spend: DecodeBudget) -> object:
    """What the decoder ``func`` makes of ``value``; NO when unknown, failing or over budget."""
    data = _as_bytes(value)
    if data is None or spend.exhausted:
        return NO
    try:
        if func in ("base64.b64decode", "base64.standard_b64decode", "base64.decodebytes",
                    "base64.decodestring", "binascii.a2b_base64"):
            out: object = base64.b64decode(b"".join(data.split()) + b"==", validate=False)
        elif func == "base64.urlsafe_b64decode":
            out = base64.urlsafe_b64decode(b"".join(data.split()) + b"==")
        elif func == "base64.b32decode":
            out = base64.b32decode(data)
        elif func == "base64.b16decode":
            out = base64.b16decode(data, casefold=True)
        elif func == "base64.b85decode":
            out = base64.b85decode(data)
        elif func == "base64.a85decode":
            out = base64.a85decode(data)
        elif func in ("binascii.unhexlify", "binascii.a2b_hex", "bytes.fromhex"):
            out = bytes.fromhex(data.decode("ascii")) if func == "bytes.fromhex" else binascii.unhexlify(data)
        elif func == "codecs.decode":
            encoding = extra[0] if extra and isinstance(extra[0], str) else "utf-8"
            encoding = encoding.lower().replace("-", "_")
            if encoding in ("rot13", "rot_13"):
                if not isinstance(value, str):
                    return NO
                out = codecs.decode(value, "rot13")
            elif encoding in ("hex", "hex_codec"):
                out = binascii.unhexlify(data)
            elif encoding in ("base64", "base64_codec", "base_64"):
                out = base64.b64decode(data + b"==")
            elif encoding in ("zlib", "zlib_codec", "zip"):
                out = _inflate(zlib.decompressobj(), data, spend)
            elif encoding in ("bz2", "bz2_codec"):
                out = _capped(bz2.BZ2Decompressor(), data, spend)
            else:
                return NO
        elif func == "zlib.decompress":
            wbits = extra[0] if extra and isinstance(extra[0], int) else zlib.MAX_WBITS
            out = _inflate(zlib.decompressobj(wbits), data, spend)
        elif func == "gzip.decompress":
            out = _inflate(zlib.decompressobj(16 + zlib.MAX_WBITS), data, spend)
        elif func == "lzma.decompress":
            out = _capped(lzma.LZMADecompressor(), data, spend)
        elif func == "bz2.decompress":
            out = _capped(bz2.BZ2Decompressor(), data, spend)
        else:   # marshal.loads and anything unknown: never evaluated
            return NO
    except (ValueError, TypeError, binascii.Error, zlib.error, lzma.LZMAError, OSError,
            EOFError, UnicodeError):
        return NO
    if out is NO or not spend.take(out):
        return NO
    return out


def _inflate(inflater, data: bytes, spend: DecodeBudget) -> object:  # noqa: ANN001
    out = inflater.decompress(data, spend.cap + 1)
    if len(out) > spend.cap:
        spend.exhausted = True
        return NO
    return out


def _capped(decompressor, data: bytes, spend: DecodeBudget) -> object:  # noqa: ANN001
    out = decompressor.decompress(data, max_length=spend.cap + 1)
    if len(out) > spend.cap:
        spend.exhausted = True
        return NO
    return out


_INT_OPS = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
    ast.BitOr: lambda a, b: a | b, ast.BitAnd: lambda a, b: a & b, ast.BitXor: lambda a, b: a ^ b,
    ast.RShift: lambda a, b: a >> b,
}


class Folder:
    """Folds expressions of one module, knowing its import aliases and simple assignments."""

    def __init__(self, resolve, env: dict[str, ast.AST], budget: Budget,  # noqa: ANN001
                 spend: DecodeBudget) -> None:
        self.resolve = resolve     # expression -> qualified name or None
        self.env = env             # module-level name -> the expression last assigned to it
        self.budget = budget
        self.spend = spend
        self._active: set[str] = set()   # names being folded (a = a + 'x' must not loop)
        self._cache: dict[int, object] = {}
        self.steps = 0

    def value(self, node: ast.AST, depth: int = 0, bound: dict[str, object] | None = None) -> object:
        self.steps += 1
        if depth > self.budget.max_fold_depth or self.steps > 200_000:
            return NO
        if not bound:
            key = id(node)
            if key in self._cache:
                return self._cache[key]
            self._cache[key] = NO   # a cycle through this node folds to nothing
            result = self.value(node, depth, {"": None})
            self._cache[key] = result
            return result
        bound = {k: v for k, v in bound.items() if k}
        try:
            result = self._value(node, depth + 1, bound)
        except (ValueError, TypeError, OverflowError, IndexError, KeyError, MemoryError,
                UnicodeError, ZeroDivisionError, RecursionError, AttributeError):
            return NO
        if isinstance(result, (str, bytes)) and len(result) > MAX_STR:
            return NO
        return result

    def _value(self, node: ast.AST, depth: int, bound: dict[str, object]) -> object:
        fold = lambda n: self.value(n, depth, bound)  # noqa: E731
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, (str, bytes, int)) else NO
        if isinstance(node, ast.Name):
            if node.id in bound:
                return bound[node.id]
            target = self.env.get(node.id)
            if target is None or node.id in self._active:
                return NO
            self._active.add(node.id)
            try:
                return fold(target)
            finally:
                self._active.discard(node.id)
        if isinstance(node, (ast.List, ast.Tuple)):
            if len(node.elts) > MAX_SEQ:
                return NO
            items = [fold(e) for e in node.elts]
            return NO if any(i is NO for i in items) else items
        if isinstance(node, ast.JoinedStr):
            parts = []
            for part in node.values:
                v = fold(part.value) if isinstance(part, ast.FormattedValue) else fold(part)
                if not isinstance(v, (str, int)) or isinstance(v, bool):
                    return NO
                parts.append(str(v))
            return "".join(parts)
        if isinstance(node, ast.BinOp):
            return self._binop(node, fold)
        if isinstance(node, ast.UnaryOp):
            v = fold(node.operand)
            if isinstance(v, int):
                if isinstance(node.op, ast.USub):
                    return -v
                if isinstance(node.op, ast.Invert):
                    return ~v
                if isinstance(node.op, ast.UAdd):
                    return v
            return NO
        if isinstance(node, ast.Subscript):
            base = fold(node.value)
            if not isinstance(base, (str, bytes, list)):
                return NO
            if isinstance(node.slice, ast.Slice):
                parts = [None if p is None else fold(p) for p in
                         (node.slice.lower, node.slice.upper, node.slice.step)]
                if any(p is NO or not (p is None or isinstance(p, int)) for p in parts):
                    return NO
                return base[slice(*parts)]
            index = fold(node.slice)
            return base[index] if isinstance(index, int) else NO
        if isinstance(node, ast.Call):
            return self._call(node, fold, depth, bound)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            return self._comprehension(node, depth, bound)
        return NO

    def _binop(self, node: ast.BinOp, fold) -> object:  # noqa: ANN001
        left, right = fold(node.left), fold(node.right)
        if left is NO or right is NO:
            return NO
        op = type(node.op)
        if isinstance(left, bool) or isinstance(right, bool):
            return NO
        if isinstance(left, int) and isinstance(right, int):
            if op is ast.LShift:
                return left << right if 0 <= right <= 64 else NO
            if op is ast.Pow:
                return left ** right if 0 <= right <= 64 and abs(left) < 1 << 16 else NO
            fn = _INT_OPS.get(op)
            return fn(left, right) if fn else NO
        if op is ast.Add and type(left) is type(right) and isinstance(left, (str, bytes, list)):
            return left + right
        if op is ast.Mult:
            seq, n = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, (str, bytes)) and isinstance(n, int) and len(seq) * n <= MAX_STR:
                return seq * n
            return NO
        if op is ast.Mod and isinstance(left, str):
            args = tuple(right) if isinstance(right, list) else right
            return left % args
        return NO

    def _call(self, node: ast.Call, fold, depth: int, bound: dict[str, object]) -> object:  # noqa: ANN001
        if any(isinstance(a, ast.Starred) for a in node.args) or len(node.args) > 4:
            return NO
        func = node.func
        name = self.resolve(func)
        args = [fold(a) for a in node.args]
        if name in DECODERS:
            if not args or args[0] is NO:
                return NO
            return decode(name, args[0], args[1:], self.spend)
        if name == "chr" and len(args) == 1 and isinstance(args[0], int):
            return chr(args[0])
        if name in ("str", "bytes", "bytearray") and len(args) == 1:
            v = args[0]
            if name == "str" and isinstance(v, (str, int)):
                return str(v)
            if name != "str" and isinstance(v, list) and all(isinstance(i, int) for i in v):
                return bytes(v)
            if name != "str" and isinstance(v, bytes):
                return v
            return NO
        if name in ("bytes", "bytearray", "str") and len(args) == 2:
            v, enc = args
            if name == "str" and isinstance(v, bytes) and isinstance(enc, str):
                return v.decode(enc, "replace")
            if name != "str" and isinstance(v, str) and isinstance(enc, str):
                return v.encode(enc)
            return NO
        if name in ("map",) and len(args) == 2 and isinstance(node.args[0], ast.Name):
            fn, seq = self.resolve(node.args[0]), args[1]
            if fn == "chr" and isinstance(seq, (list, bytes)):
                return [chr(c) for c in seq]
            if fn == "str" and isinstance(seq, list):
                return [str(c) for c in seq]
            return NO
        if name in ("reversed", "list") and len(args) == 1 and isinstance(args[0], (str, list, bytes)):
            seq = args[0]
            return list(reversed(seq) if name == "reversed" else seq)
        if isinstance(func, ast.Attribute):
            return self._method(func.attr, fold(func.value), args, node, fold)
        return NO

    def _method(self, attr: str, obj: object, args: list[object], node: ast.Call, fold) -> object:  # noqa: ANN001
        if obj is NO or any(a is NO for a in args):
            return NO
        if attr == "join" and isinstance(obj, (str, bytes)) and len(args) == 1:
            seq = args[0]
            if isinstance(seq, (list, str)) and all(isinstance(i, type(obj)) for i in seq):
                return obj.join(seq)
            return NO
        if attr == "decode" and isinstance(obj, bytes):
            encoding = args[0] if args and isinstance(args[0], str) else "utf-8"
            if encoding.lower().replace("-", "_") in ("rot13", "rot_13", "hex", "base64"):
                return NO
            return obj.decode(encoding, "replace")
        if attr == "encode" and isinstance(obj, str):
            encoding = args[0] if args and isinstance(args[0], str) else "utf-8"
            if encoding.lower().replace("-", "_") in ("rot13", "rot_13"):
                return codecs.encode(obj, "rot13")
            return obj.encode(encoding)
        if attr == "format" and isinstance(obj, str):
            kwargs = {}
            for kw in node.keywords:
                if kw.arg is None:
                    return NO
                v = fold(kw.value)
                if v is NO:
                    return NO
                kwargs[kw.arg] = v
            return obj.format(*args, **kwargs)
        if attr == "replace" and isinstance(obj, (str, bytes)) and len(args) == 2:
            return obj.replace(args[0], args[1])
        if attr in ("upper", "lower", "strip", "lstrip", "rstrip", "title", "swapcase") \
                and isinstance(obj, (str, bytes)) and len(args) <= 1:
            return getattr(obj, attr)(*args)
        if attr == "fromhex" and isinstance(args[0] if args else None, str):
            return bytes.fromhex(args[0])
        return NO

    def _comprehension(self, node: ast.ListComp | ast.GeneratorExp, depth: int,
                       bound: dict[str, object]) -> object:
        if len(node.generators) != 1:
            return NO
        gen = node.generators[0]
        if gen.ifs or not isinstance(gen.target, ast.Name):
            return NO
        seq = self.value(gen.iter, depth, bound)
        if not isinstance(seq, (list, str, bytes)) or len(seq) > MAX_SEQ:
            return NO
        out = []
        for item in seq:
            v = self.value(node.elt, depth, {**bound, gen.target.id: item})
            if v is NO:
                return NO
            out.append(v)
        return out
