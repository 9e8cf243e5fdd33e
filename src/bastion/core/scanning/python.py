"""Static analysis of one Python source with ``ast``: what it calls, under which names, with
which strings, and what its encoded payloads say.

The tree is walked without recursion (a hostile file nests expressions tens of thousands
deep), with a node budget and the file's deadline. Import aliases, assignments of functions
and modules, ``getattr`` with a computed name, ``__import__`` and ``importlib.import_module``
are followed to the qualified name really called. Payloads that fold to a string (decoded
base64, decompressed zlib, ...) are parsed and analysed again, up to the decode depth.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass, field

from . import indicators
from .budget import Budget, Clock, OutOfBudget
from .folding import DECODERS, NO, DecodeBudget, Folder

EXEC = frozenset({"exec", "eval", "compile", "execfile", "builtins.exec", "builtins.eval",
                  "builtins.compile"})
PROC_PREFIXES = ("subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "pty.spawn",
                 "commands.get", "asyncio.create_subprocess")
PROC = frozenset({"os.system", "os.popen", "os.popen2", "os.popen3", "os.startfile",
                  "popen2.popen2", "platform.popen"})
NET_PREFIXES = ("requests.", "httpx.", "urllib3.", "aiohttp.", "http.client.", "httplib.",
                "ftplib.", "smtplib.", "telnetlib.", "websocket.", "pycurl.", "paramiko.")
NET = frozenset({"urllib.request.urlopen", "urllib.request.urlretrieve", "urllib.urlopen",
                 "urllib.urlretrieve", "urllib2.urlopen", "urllib.request.Request",
                 "urllib2.Request", "socket.create_connection", "socket.socket",
                 "urllib.request.build_opener"})
DNS = frozenset({"socket.gethostbyname", "socket.gethostbyname_ex", "socket.getaddrinfo",
                 "dns.resolver.resolve", "dns.resolver.query", "dns.resolver.Resolver"})
RECON = frozenset({"socket.gethostname", "getpass.getuser", "os.getlogin", "platform.node",
                   "platform.uname", "os.uname", "uuid.getnode", "socket.getfqdn"})
CLIPBOARD_PREFIXES = ("pyperclip.", "win32clipboard.", "clipboard.")
# An address a request is sent to: a URL or a host name with a domain.
_ADDRESS = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*://|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?::\d+)?(?:/|$))", re.I)
# Names of what proves ownership of a wallet or an account and is only ever used locally.
_SECRET_NAME = re.compile(r"(?:^|_)(?:priv(?:ate)?_?key|mnemonic|seed_?phrase|secret_?key|"
                          r"access_?key_?secret|wallet_?key)s?$", re.I)
# What a tool's description says to take the model over: hidden-instruction tags, orders to
# ignore earlier instructions or to keep something from the user.
_TOOL_ORDERS = re.compile(
    r"<\s*/?\s*(?:important|system[\w ]*|instructions?|hidden[\w ]*)\s*>|"
    r"\bignore (?:all |any )?(?:previous|prior|above|earlier) instructions|"
    r"\b(?:do not|don't|never) (?:tell|mention|inform|reveal|show|notify)\b[^.\n]{0,40}\buser|"
    r"\bwithout (?:telling|informing|notifying|alerting) the user", re.I)
# Calls that hand on the value they are given (a key in a string is still the key).
_PASSES_VALUE = frozenset({"str", "repr", "dict", "list", "tuple", "set", "json.dumps"})
DECRYPT_ATTRS = frozenset({"decrypt", "decrypt_and_verify", "decompress", "b64decode",
                           "a85decode", "b85decode", "unhexlify", "fromhex", "loads"})
INSTALL_COMMANDS = frozenset({"install", "develop", "egg_info", "bdist_egg", "build_py",
                              "easy_install", "bdist_wheel", "sdist"})
# Commands pip (or a build frontend) runs while installing; any other command class of a
# setup.py (upload, release, test, clean, ...) runs only when a maintainer names it.
RUN_AT_INSTALL = (INSTALL_COMMANDS - {"sdist"}) | frozenset({
    "build", "build_ext", "build_clib", "build_scripts", "install_lib", "install_scripts",
    "install_data", "install_headers", "dist_info", "editable_wheel", "bdist", "bdist_rpm"})
KNOWN_MODULES = frozenset({"os", "sys", "subprocess", "base64", "zlib", "lzma", "bz2", "gzip",
                           "marshal", "codecs", "socket", "urllib", "urllib.request", "requests",
                           "builtins", "binascii", "ctypes", "platform", "getpass", "pty",
                           "importlib", "http.client", "shutil", "tempfile", "webbrowser",
                           "zipimport"})
_EXECUTABLE_MAGIC = (b"\x7fELF", b"MZ\x90\x00", b"MZP\x00", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf",
                     b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
_OBF_NAME = re.compile(r"^(?:[Il1]{6,}|_0x[0-9a-fA-F]{3,}|O[O0]{5,}|_{5,}\w*|[^\x00-\x7f]{4,})$")


# Nodes without fields (load/store contexts, operators): shared singletons with nothing for
# any pass to find. They still count against the node budget, so a file's limit is unchanged.
_LEAVES = frozenset(cls for cls in vars(ast).values()
                    if isinstance(cls, type) and issubclass(cls, ast.AST) and cls.__subclasses__() == []
                    and not cls._fields and issubclass(cls, (ast.expr_context, ast.operator, ast.unaryop,
                                                             ast.cmpop, ast.boolop)))


@dataclass
class Hit:
    rule: str
    line: int
    detail: str
    toplevel: bool          # runs when the module runs (not only when a function is called)
    scope: int              # the function (or module, 0) it is in
    literal: bool = False   # found in the text (a string), not in what the code calls


@dataclass
class Analysis:
    hits: list[Hit] = field(default_factory=list)
    budget_notes: list[str] = field(default_factory=list)
    install_hook: bool = False
    syntax_error: bool = False
    inert_scopes: set[int] = field(default_factory=set)   # setup.py methods pip never runs
    inert_spans: list[tuple[int, int]] = field(default_factory=list)   # and their lines

    def add(self, rule: str, line: int, detail: str, toplevel: bool, scope: int,
            literal: bool = False) -> None:
        self.hits.append(Hit(rule, line, detail[:160], toplevel, scope, literal))


def analyse(source: bytes | str, budget: Budget, clock: Clock, spend: DecodeBudget | None = None,
            depth: int = 0, line_offset: int = 0, always: bool = False, parse: bool = True,
            words: bytes | None = None) -> Analysis:
    """``always``: parse even without a trigger word (setup.py: its command classes matter);
    ``parse``: False matches the text only (the archive's parse budget is spent);
    ``words``: indicators.words() of the source, if the caller has them."""
    result = Analysis()
    spend = spend or DecodeBudget(budget)
    data = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source
    # String literals are matched in the raw text, once: cheaper than one match per constant.
    for rule_id, snippet, offset in indicators.locate(data, words):
        result.add(rule_id, line_offset + data.count(b"\n", 0, offset) + 1, snippet, True, 0, True)
    _long_lines(data, result, line_offset)
    if not parse or (not always and not indicators.TRIGGER.search(data)
                     and not indicators.has_encoded_run(data)):
        return result
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    tree = _parse(text.replace("\x00", ""), result)
    if tree is None:
        return result
    _Walker(tree, result, budget, clock, spend, depth, line_offset).run()
    if spend.exhausted and depth == 0:
        result.budget_notes.append(f"decode budget of {budget.max_decoded_bytes} bytes spent")
    return result


_REPAIRS = 3   # lines given up per module before it is matched as text only


def _parse(text: str, result: Analysis) -> ast.Module | None:
    """The module's syntax tree, with up to ``_REPAIRS`` lines that do not parse set aside.

    Malware is often careless (a quote inside a quoted string, a missing comma): one broken
    line must not hide the calls of all the others. Each broken line becomes ``pass`` at its
    own indentation, so the block around it and every line number stay as they were; a module
    that needs more than a few repairs (Python 2, not Python at all) is matched as text only.
    """
    for attempt in range(_REPAIRS + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ast.parse(text)
        except SyntaxError as exc:
            result.syntax_error = True
            lines = text.split("\n")
            number = (exc.lineno or 0) - 1
            if attempt == _REPAIRS or not 0 <= number < len(lines) or lines[number].strip() in ("", "pass"):
                return None
            line = lines[number]
            lines[number] = line[:len(line) - len(line.lstrip())] + "pass"
            text = "\n".join(lines)
        except (ValueError, RecursionError, MemoryError, OverflowError):
            result.syntax_error = True
            return None
    return None


def _long_lines(data: bytes, result: Analysis, offset: int) -> None:
    if len(data) < 4000:
        return
    lines = data.split(b"\n")
    if max(map(len, lines)) <= 4000:
        return
    for number, line in enumerate(lines, 1):
        if len(line) > 4000 and (b"(" in line or b";" in line):
            result.add("obf-long-line", offset + number, f"{len(line)} characters", True, 0)
            return


class _Walker:
    def __init__(self, tree: ast.Module, result: Analysis, budget: Budget, clock: Clock,
                 spend: DecodeBudget, depth: int, line_offset: int) -> None:
        self.tree = tree
        self.result = result
        self.budget = budget
        self.clock = clock
        self.spend = spend
        self.depth = depth
        self.offset = line_offset
        self.aliases: dict[str, str] = {}
        self.env: dict[str, ast.AST] = {}
        # Names some statement binds by unpacking (`a, b = name.rsplit('.', 1)`): whatever one
        # plain assignment gives them, their value depends on which branch ran.
        self.unpacked: set[str] = set()
        self.star: set[str] = set()
        self.obfuscated_lookup: int | None = None  # the line of the first one
        self.folder = Folder(self.resolve, self.env, budget, spend)
        self.commands: dict[str, list[int]] = {}     # command class -> ids of its methods
        self.registered: dict[str, set[str]] = {}    # class name -> the command names it serves
        self.command_lines: dict[str, int] = {}
        self.command_spans: dict[str, list[tuple[int, int]]] = {}
        self.matched: dict[str, list[tuple[str, str]]] = {}
        self.calls_in_attrs: dict[str, ast.Call] = {}
        self.returns: dict[str, ast.AST] = {}        # function -> the name it ends returning
        self.tested: set[int] = set()                # ids of the right-hand sides of `in` tests
        self.discarded: set[int] = set()             # ids of calls whose value nothing keeps
        self.os_fields: set[int] = set()             # ids of uname() calls read for OS or CPU only

    # -- names ------------------------------------------------------------------------------
    def _lookup_at(self, node: ast.AST) -> None:
        if self.obfuscated_lookup is None:
            self.obfuscated_lookup = getattr(node, "lineno", 1)

    def resolve(self, node: ast.AST, depth: int = 0) -> str | None:
        """The qualified name an expression denotes, as far as it can be known statically."""
        if depth > 20:
            return None
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            if node.id == "__builtins__":
                return "builtins"
            for module in self.star:
                qualified = f"{module}.{node.id}"
                if qualified in PROC or qualified in NET or qualified in DECODERS:
                    return qualified
            return node.id
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value, depth + 1)
            if base is None:
                return None
            if base in ("builtins", "__builtins__") or base.endswith(".__dict__"):
                return _builtin(node.attr)
            return f"{base}.{node.attr}"
        if isinstance(node, ast.Call):
            func = self.resolve(node.func, depth + 1)
            if func in ("getattr", "builtins.getattr") and len(node.args) >= 2:
                base = self.resolve(node.args[0], depth + 1)
                attr = self.folder.value(node.args[1])
                if base is None or not isinstance(attr, str):
                    return None
                target = _builtin(attr) if base in ("builtins", "__builtins__", "globals()", "vars()") \
                    else f"{base}.{attr}"
                if not isinstance(node.args[1], ast.Constant) and _dangerous(target):
                    self._lookup_at(node)
                return target
            if func in ("__import__", "builtins.__import__", "importlib.import_module") and node.args:
                module = self.folder.value(node.args[0])
                if isinstance(module, str):
                    if not isinstance(node.args[0], ast.Constant) and _dangerous(module):
                        self._lookup_at(node)
                    return module
                return None
            if func in ("globals", "vars", "locals") and not node.args:
                return "globals()"
            if func == "vars" and node.args:
                inner = self.resolve(node.args[0], depth + 1)
                return f"{inner}.__dict__" if inner else None
            if isinstance(node.func, ast.Name) and node.func.id in self.returns:
                # def get(): from subprocess import check_output as c; return c -- get()(cmd)
                # is the call it hands out, however many helpers stand between.
                target = self.resolve(self.returns[node.func.id], depth + 1)
                return target if target and _interesting(target) else None
            return None
        if isinstance(node, ast.Subscript):
            base = self.resolve(node.value, depth + 1)
            key = self.folder.value(node.slice)
            if base and isinstance(key, str):
                target = None
                if base in ("globals()", "builtins", "builtins.__dict__") or base.endswith(".__dict__"):
                    target = "builtins" if key == "__builtins__" else _builtin(key)
                elif base == "sys.modules":
                    target = key
                if target and not isinstance(node.slice, ast.Constant) and _dangerous(target):
                    self._lookup_at(node)
                return target
            return None
        return None

    # -- passes -----------------------------------------------------------------------------
    def run(self) -> None:
        self.order = self._nodes()
        self._collect()
        self._walk()

    def _nodes(self) -> list[tuple[ast.AST, bool, int]]:
        """Every node, in source order, with whether it runs at module level and its scope."""
        order: list[tuple[ast.AST, bool, int]] = []
        stack: list[tuple[ast.AST, bool, int]] = [(self.tree, True, 0)]
        limit, check = self.budget.max_nodes, self.clock.check
        functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
        collected = (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)
        AST = ast.AST
        leaves = _LEAVES
        count = 0
        while stack:
            item = stack.pop()
            node, top, scope = item
            count += 1
            if count & 1023 == 0:
                if count > limit:
                    raise OutOfBudget(f"more than {limit} syntax nodes in one file")
                check()
            if type(node) in leaves:
                continue   # counted against the budget as before, but nothing to look at
            order.append(item)
            if isinstance(node, functions):
                top, scope = False, id(node)
                if type(node) is not ast.Lambda and node.body and isinstance(node.body[-1], ast.Return) \
                        and isinstance(node.body[-1].value, (ast.Name, ast.Attribute)):
                    self.returns[node.name] = node.body[-1].value
            elif isinstance(node, collected):
                self._collect_one(node)
            elif isinstance(node, ast.If) and _argv_guard(node.test):
                # `if sys.argv[-1] == "publish":` runs only when a maintainer types it.
                self.result.inert_scopes.add(id(node))
                self.result.inert_spans.append(_span(node, self.offset))
                stack.append((node.test, top, scope))
                for child in reversed(node.orelse):
                    stack.append((child, top, scope))
                for child in reversed(node.body):
                    stack.append((child, False, id(node)))
                continue
            children = []
            for name in node._fields:
                value = getattr(node, name, None)
                if type(value) is list:
                    children.extend(v for v in value if isinstance(v, AST))
                elif isinstance(value, AST):
                    children.append(value)
            push = stack.append
            for child in reversed(children):
                push((child, top, scope))
        return order

    def _collect_one(self, node: ast.AST) -> None:
        """Import aliases and simple assignments, gathered while the tree is listed."""
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    self.aliases.setdefault(head, head)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name == "*":
                    self.star.add(node.module)
                else:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            self.env[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            self.env[node.target.id] = node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Attribute) and isinstance(node.value, ast.Call):
            self.calls_in_attrs[node.targets[0].attr] = node.value   # self.host = gethostname()
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, (ast.Tuple, ast.List)):
                    self.unpacked.update(element.id for element in ast.walk(target)
                                         if isinstance(element, ast.Name))

    def _collect(self) -> None:
        for name in self.unpacked:
            self.env.pop(name, None)
        # Functions and modules bound to other names: x = getattr(os, 'sys'+'tem'); e = exec.
        for name, value in list(self.env.items()):
            if isinstance(value, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)):
                if isinstance(value, ast.Name) and value.id == name:
                    continue
                target = self.resolve(value)
                if target and target != name and _interesting(target):
                    self.aliases[name] = target

    def _walk(self) -> None:
        result = self.result
        obf_names: set[str] = set()
        # ast.parse makes exactly these classes (never subclasses), so the type is looked up
        # once per node rather than tested against each kind in turn.
        Constant, Call, Name, Dict, ClassDef = ast.Constant, ast.Call, ast.Name, ast.Dict, ast.ClassDef
        Compare, Expr, Subscript, Attribute = ast.Compare, ast.Expr, ast.Subscript, ast.Attribute
        folded = (ast.BinOp, ast.JoinedStr, Call)
        seen_names: set[str] = set()
        offset, check = self.offset, self.clock.check
        for index, (node, top, scope) in enumerate(self.order):
            if index & 1023 == 0:
                check()
            kind = type(node)
            if kind is Name:
                name = node.id
                if name not in seen_names:
                    seen_names.add(name)
                    if _OBF_NAME.match(name):
                        obf_names.add(name)
            elif kind is Constant:
                # Only long strings can be encoded payloads (see _string).
                if isinstance(node.value, (str, bytes)) and len(node.value) >= 200:
                    self._string(node.value, getattr(node, "lineno", 1) + offset, top, scope)
            elif kind in folded:
                line = getattr(node, "lineno", 1) + offset
                if kind is Call:
                    self._call(node, line, top, scope)
                value = self.folder.value(node)
                if isinstance(value, str) and 8 <= len(value) < 100_000:
                    self._indicators(value, line, top, scope)
            elif kind is ClassDef:
                self._class(node, getattr(node, "lineno", 1) + offset)
            elif (kind is ast.FunctionDef or kind is ast.AsyncFunctionDef) and node.decorator_list:
                self._tool(node, getattr(node, "lineno", 1) + offset, top, scope)
            elif kind is Expr:
                if type(node.value) is Call:
                    self.discarded.add(id(node.value))
            elif kind is Subscript or kind is Attribute:
                # The tree is listed parents first: the call is marked before it is looked at.
                if type(node.value) is Call and _os_field(node):
                    self.os_fields.add(id(node.value))
            elif kind is Compare:
                # `"x" in str(os.environ)` looks a value up; the text goes nowhere.
                if all(type(op) in (ast.In, ast.NotIn) for op in node.ops):
                    self.tested.update(id(c) for c in node.comparators)
            elif kind is Dict and len(node.keys) <= 64:
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                            and isinstance(value, ast.Name):
                        self.registered.setdefault(value.id, set()).add(key.value)
        inert_lines = set()
        for cls, methods in self.commands.items():
            if not (self.registered.get(cls, set()) & RUN_AT_INSTALL):
                result.inert_scopes.update(methods)
                result.inert_spans.extend(self.command_spans[cls])
                inert_lines.add(self.command_lines[cls])
        if inert_lines:
            result.hits = [h for h in result.hits
                           if not (h.rule == "install-hook" and h.line in inert_lines)]
            result.install_hook = any(h.rule == "install-hook" for h in result.hits)
        if len(obf_names) >= 8:
            result.add("obf-identifiers", 1 + self.offset, ", ".join(sorted(obf_names)[:3]), True, 0)
        if self.obfuscated_lookup is not None:
            result.add("obf-builtin-lookup", self.obfuscated_lookup + self.offset,
                       "name computed at run time", True, 0)

    def _indicators(self, text: str, line: int, top: bool, scope: int) -> None:
        # Nested expressions fold to the same strings again and again (the outer concatenation
        # holds the inner one); the match of each distinct string is kept for this file.
        found = self.matched.get(text)
        if found is None:
            found = self.matched[text] = indicators.match(text)
        for rule_id, snippet in found:
            self.result.add(rule_id, line, snippet, top, scope)

    def _string(self, value: str | bytes, line: int, top: bool, scope: int) -> None:
        if isinstance(value, bytes):
            text = value.decode("latin-1")
        else:
            text = value
        if len(text) >= 200 and indicators.looks_encoded(text):
            self._blob(text, line, top, scope)

    def _blob(self, text: str, line: int, top: bool, scope: int) -> None:
        """A long encoded constant: decoded if it can be, and what it hides analysed."""
        compact = "".join(text.split())
        payload = NO
        for func in ("base64.b64decode", "binascii.unhexlify", "base64.b32decode"):
            if func == "binascii.unhexlify" and (len(compact) % 2 or not re.fullmatch(r"[0-9a-fA-F]+", compact)):
                continue
            payload = _decode_chain(func, compact, self.spend)
            if payload is not NO:
                break
        if payload is NO:
            if indicators.entropy(compact) > 4.5:
                self.result.add("obf-entropy-blob", line, f"{len(text)} characters", top, scope)
            return
        self._payload(payload, line, top, scope, quiet=True, hidden=True)

    def _payload(self, payload: object, line: int, top: bool, scope: int, quiet: bool = False,
                 hidden: bool = False) -> None:
        """``hidden``: the payload was decoded from an encoding, not merely assembled."""
        """Analyse decoded data: Python source is parsed again; any text is matched."""
        if isinstance(payload, bytes):
            if payload.startswith(_EXECUTABLE_MAGIC):
                self.result.add("obf-embedded-binary", line, "executable in an encoded string", top, scope)
                return
            if payload[:1] in (b"\xe3", b"c") and b"\x00" in payload[:32] and not quiet:
                self.result.add("exec-marshal", line, "marshalled code object", top, scope)
                return
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                if quiet:
                    self.result.add("obf-entropy-blob", line, "encoded binary data", top, scope)
                return
        elif isinstance(payload, str):
            text = payload
        else:
            return
        printable = sum(c.isprintable() or c in "\r\n\t" for c in text[:2000])
        if printable < 0.95 * min(len(text), 2000):
            return
        if self.depth >= self.budget.max_decode_depth:
            self.result.budget_notes.append(f"decode depth {self.budget.max_decode_depth} reached")
            return
        if re.search(r"\bimport\b|\bexec\b|\beval\b|\(", text):
            inner = analyse(text, self.budget, self.clock, self.spend, self.depth + 1, line - 1)
            if not inner.syntax_error:
                if hidden:
                    self.result.add("obf-decoded-code", line, "Python source in an encoded string", top, scope)
                for hit in inner.hits:
                    self.result.add(hit.rule, line, hit.detail, top, scope)
                self.result.budget_notes.extend(inner.budget_notes)
                return
        self._indicators(text[:200_000], line, top, scope)

    def _class(self, node: ast.ClassDef, line: int) -> None:
        last = {(self.resolve(base) or "").rsplit(".", 1)[-1] for base in node.bases}
        if last and not (last & RUN_AT_INSTALL) and all(
                b in ("Command", "upload", "register", "test", "clean", "check", "TestCommand", "sdist")
                for b in last):
            methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            self.commands[node.name] = [id(n) for n in methods]
            self.command_spans[node.name] = [_span(n, self.offset) for n in methods]
            self.command_lines[node.name] = line
        for base in node.bases:
            name = self.resolve(base) or ""
            if name.rsplit(".", 1)[-1] in INSTALL_COMMANDS:
                methods = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
                if methods & {"run", "__init__", "initialize_options", "finalize_options"}:
                    self.result.install_hook = True
                    self.result.add("install-hook", line, f"class {node.name}({name})", True, 0)
                return

    def _call(self, node: ast.Call, line: int, top: bool, scope: int) -> None:
        name = self.resolve(node.func) or ""
        add = self.result.add
        if name in EXEC:
            if node.args and not isinstance(node.args[0], ast.Constant):
                arg = node.args[0]
                decodes = self._decodes(arg)
                if not decodes and self._reads_file(arg):
                    return   # exec(open('pkg/version.py').read()): the package's own source
                if not decodes and len(node.args) > 1 and not (
                        isinstance(node.args[1], ast.Call)
                        and self.resolve(node.args[1].func) in ("globals", "locals")):
                    return   # evaluated in a namespace of its own, as templates and configs are
                if decodes:
                    add("exec-decoded", line, f"{name}() of decoded data", top, scope)
                else:
                    add("exec-dynamic", line, f"{name}() of a computed string", top, scope)
                value = self.folder.value(arg)
                if value is not NO:
                    if decodes or (not isinstance(arg, ast.Name) and self._hidden(arg, value)):
                        add("exec-decoded", line, f"{name}() of a string built to hide it", top, scope)
                    self._payload(value, line, top, scope, hidden=decodes)
            return
        if name == "zipimport.zipimporter":
            # Code imported from an archive inside the package: its source is not read here.
            add("exec-dynamic", line, "code imported from a zip archive", top, scope)
            return
        if name == "marshal.loads" or name.endswith(".marshal.loads"):
            # Loading marshalled data from a file is honest; from a literal or a decoded blob
            # it is code smuggled past the reader.
            if node.args and (isinstance(node.args[0], ast.Constant) or self._decodes(node.args[0])):
                add("exec-marshal", line, "marshal.loads of embedded data", top, scope)
            return
        command = self._command_text(node)
        if name in PROC or name.startswith(PROC_PREFIXES):
            if command and _DNS_TOOL.match(command) and self._built_host(node.args[0]):
                # dig/nslookup of a name built from data carries the data in the query itself.
                add("exfil-dns", line, f"{command[:40]} of a built host name", top, scope)
            if command and re.search(r"\bpip\d?(?:\.exe)?\b.*\binstall\b", command):
                add("proc-install-package", line, command[:80], top, scope)
            elif command and _DESTRUCTIVE.search(command):
                add("proc-destructive", line, command[:80], top, scope)
            elif command and _LAUNCH.search(command):
                add("proc-shell-download", line, command[:80], top, scope)
            elif not command or not _benign_command(command):
                add("proc-exec", line, f"{name}({(command or '')[:60]})", top, scope)
            if command:
                self._indicators(command, line, top, scope)
            return
        if name in ("pip.main", "pip._internal.main", "pip._internal.cli.main.main"):
            add("proc-install-package", line, name, top, scope)
            return
        if name in NET or name.startswith(NET_PREFIXES):
            if name.rsplit(".", 1)[-1] not in ("exceptions", "codes", "HTTPError", "RequestException",
                                               "ConnectionError", "Timeout", "adapters"):
                add("net-call", line, name, top, scope)
                sent = [*node.args, *(k.value for k in node.keywords)]
                if any(self._mentions_environ(a) for a in sent):
                    add("cred-env-dump", line, "the environment sent over the network", top, scope)
                address = self._hidden_address(node)
                if address:
                    add("exfil-hidden-url", line, address[:80], top, scope)
                    self._indicators(address, line, top, scope)
                secret = self._secret_sent(sent)
                if secret:
                    add("exfil-secret", line, f"{secret} sent by {name}", top, scope)
            return
        if name in DNS:
            if node.args and _loopback(self.folder.value(node.args[0])):
                return   # nothing leaves the machine
            if node.args and self._own_name(node.args[0]):
                if id(node) in self.discarded:
                    return   # a lookup whose answer is thrown away checks the name, keeps nothing
                add("recon-host", line, f"{name} of the host's own name", top, scope)
                return
            if node.args and not isinstance(node.args[0], ast.Constant) and self._has_domain(node.args[0]):
                add("exfil-dns", line, f"{name} of a built host name", top, scope)
            else:
                add("net-call", line, name, top, scope)
            return
        if name in RECON:
            if id(node) in self.os_fields or id(node) in self.discarded:
                return   # the OS or CPU of uname(), or nothing kept: no identity collected
            add("recon-host", line, name, top, scope)
            return
        if name.startswith(CLIPBOARD_PREFIXES) or name.endswith((".clipboard_get", "OpenClipboard")):
            add("cred-clipboard", line, name, top, scope)
            return
        if name.startswith(("ctypes.windll", "ctypes.WinDLL", "ctypes.wintypes")):
            add("win-api", line, name, top, scope)
            return
        # Serialising the whole environment (to send or store it), not iterating or copying it.
        if name in ("json.dumps", "str", "repr", "print", "base64.b64encode") \
                and node.args and id(node) not in self.tested and self._mentions_environ(node.args[0]):
            add("cred-env-dump", line, f"{name}(os.environ)", top, scope)

    def _decodes(self, node: ast.AST, depth: int = 0) -> bool:
        """Whether an expression decodes, decompresses or decrypts (directly or via a name)."""
        if depth > 6:
            return False
        for sub in ast.walk(node) if depth < 6 else ():
            if isinstance(sub, ast.Call):
                name = self.resolve(sub.func) or ""
                if name in DECODERS or name.rsplit(".", 1)[-1] in DECRYPT_ATTRS:
                    return True
                if isinstance(sub.func, ast.Attribute) and sub.func.attr in DECRYPT_ATTRS:
                    return True   # Fernet(key).decrypt(blob): a method of an object built in place
                if isinstance(sub.func, ast.Attribute) and sub.func.attr == "decode" and sub.args:
                    enc = self.folder.value(sub.args[0])
                    if isinstance(enc, str) and enc.lower().replace("-", "_") in ("rot13", "rot_13", "hex", "base64", "zlib"):
                        return True
            elif isinstance(sub, ast.Name) and sub.id in self.env and depth < 3:
                if self._decodes(self.env[sub.id], depth + 1):
                    return True
        return False

    def _hidden(self, node: ast.AST, value: object) -> bool:
        """Whether folding ``node`` revealed words that none of its literal pieces shows: chr()
        arithmetic, reversal, character joins. Code assembled from readable pieces
        ("lambda x: " + body) hides nothing."""
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str):
            return False
        pieces = " ".join(sub.value for sub in ast.walk(node)
                          if isinstance(sub, ast.Constant) and isinstance(sub.value, str))
        words = set(re.findall(r"[A-Za-z_]{4,}", value))
        return any(word not in pieces for word in words)

    def _tool(self, node: ast.FunctionDef | ast.AsyncFunctionDef, line: int, top: bool, scope: int) -> None:
        """An AI agent's tool (``@mcp.tool()``, ``@tool``) whose description, which the model
        reads as instructions, orders it to do more than the tool: read or send files and keys,
        keep it from the user. A prompt template elsewhere in the code is only text."""
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            name = self.resolve(target) or ""
            if name == "tool" or name.endswith(".tool"):
                doc = ast.get_docstring(node, clean=False) or ""
                order = _TOOL_ORDERS.search(doc[:20_000])
                if order:
                    self.result.add("inject-tool-prompt", line, f"{node.name}: {order.group(0)[:60]}", top, scope)
                return

    def _hidden_address(self, node: ast.Call) -> str | None:
        """The address a request goes to when the code hides it: decoded from base64 or hex, or
        folded from chr() codes or a reversal (no literal piece shows it). An address written
        out, or one read from configuration, hides nothing."""
        arg = node.args[0] if node.args else next(
            (k.value for k in node.keywords if k.arg in ("url", "host", "address")), None)
        if arg is None or isinstance(arg, ast.Constant):
            return None
        source = self.env.get(arg.id, arg) if isinstance(arg, ast.Name) else arg
        if isinstance(source, ast.Constant):
            return None
        value = self.folder.value(arg)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str) or not _ADDRESS.search(value):
            return None
        if self._decodes(source):
            return value
        # Folding through variables shows words from elsewhere in the module (a server name
        # set at the top of it): hidden only when the expression alone builds the address.
        if not any(isinstance(sub, ast.Name) and sub.id in self.env for sub in ast.walk(source)) \
                and self._hidden(source, value):
            return value
        return None

    def _secret_sent(self, nodes: list[ast.AST]) -> str | None:
        """A private key, seed phrase or secret key among what a request sends, by the name it
        is held in (``{"key": private_key}``, directly or through one assignment). A wallet or
        SDK signs with such a key; it never needs to send it anywhere."""
        stack = list(nodes)
        seen = 0
        while stack and seen < 500:
            node = stack.pop()
            seen += 1
            if isinstance(node, ast.Call) and self.resolve(node.func) not in _PASSES_VALUE:
                continue   # sign(tx, private_key): what a call makes of the key is not the key
            word = node.id if isinstance(node, ast.Name) else \
                node.attr if isinstance(node, ast.Attribute) else None
            if word and _SECRET_NAME.search(word):
                return word
            if isinstance(node, ast.Name) and node.id in self.env and seen < 50:
                stack.append(self.env[node.id])
            stack.extend(ast.iter_child_nodes(node))
        return None

    def _reads_file(self, node: ast.AST) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                name = self.resolve(sub.func) or ""
                if name in ("open", "io.open", "codecs.open") or name.endswith((".read_text", ".read")):
                    return True
        return False

    def _own_name(self, node: ast.AST) -> bool:
        """Whether ``node`` is the host's own name: gethostname() itself, or a name or an
        attribute it was stored in (``self.host = socket.gethostname()``), also with a
        suffix of a network no query leaves (``gethostname() + '.local'``, multicast DNS)."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            suffix = self.folder.value(node.right)
            if isinstance(suffix, str) and _LOCAL_SUFFIX.fullmatch(suffix.lower()):
                node = node.left
        if isinstance(node, ast.Name):
            node = self.env.get(node.id, node)
        elif isinstance(node, ast.Attribute):
            node = self.calls_in_attrs.get(node.attr, node)
        return isinstance(node, ast.Call) and self.resolve(node.func) in RECON

    def _mentions_environ(self, node: ast.AST) -> bool:
        """Whether the whole environment goes into ``node``; one variable read from it
        (``os.environ["PORT"]``, ``os.environ.get("HOME")``) is configuration, not a dump."""
        nodes = list(ast.walk(node))
        one_key = {id(sub.value) for sub in nodes
                   if isinstance(sub, ast.Subscript)
                   or (isinstance(sub, ast.Attribute) and sub.attr in ("get", "pop", "setdefault"))}
        for sub in nodes:
            if isinstance(sub, (ast.Attribute, ast.Name)) and id(sub) not in one_key \
                    and self.resolve(sub) == "os.environ":
                return True
            if isinstance(sub, ast.Call) and self.resolve(sub.func) in ("os.environ.copy", "dict") \
                    and sub is not node:
                continue
        return False

    def _built_host(self, arg: ast.AST) -> bool:
        """Whether a command (a string or an argument list) holds a host name built at run time
        from a literal domain and something else (``f"{data}.example.net"``)."""
        parts = arg.elts if isinstance(arg, (ast.List, ast.Tuple)) else [arg]
        for part in parts:
            if isinstance(part, ast.Name):
                part = self.env.get(part.id, part)
            if not isinstance(part, ast.Constant) and self._has_domain(part):
                return True
        return False

    def _has_domain(self, node: ast.AST) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and re.search(
                    r"\.[a-z]{2,}\.?$|\.[a-z0-9-]+\.[a-z]{2,}", sub.value):
                return True
        return False

    def _command_text(self, node: ast.Call) -> str | None:
        if not node.args:
            return None
        value = self.folder.value(node.args[0])
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return " ".join(value)
        # A list with unknown parts: its literal parts still say what runs. So does a list
        # built first (`cmd = [exe, 'clone', url]; check_call(cmd)`).
        arg = node.args[0]
        if isinstance(arg, ast.Name) and isinstance(self.env.get(arg.id), (ast.List, ast.Tuple)):
            arg = self.env[arg.id]
        if isinstance(arg, (ast.List, ast.Tuple)):
            parts = [self._command_part(e) for e in arg.elts]
            known = [p for p in parts if isinstance(p, str)]
            if known and parts and not isinstance(parts[0], str) \
                    and self.resolve(arg.elts[0]) != "sys.executable":
                # The program itself is unknown: its first argument is no program
                # (asyncpg's `[pg_ctl, 'start', '-D', ...]` is not Windows' `start`).
                known.insert(0, "?")
            if known:
                return " ".join(known)
            if any(self.resolve(e) == "sys.executable" for e in arg.elts):
                return "python"
        if isinstance(arg, ast.JoinedStr):
            return "".join(v.value for v in arg.values if isinstance(v, ast.Constant)
                           and isinstance(v.value, str))
        return None

    def _command_part(self, node: ast.AST) -> object:
        """One element of a command list. A choice between two programs (`'git' if ... else
        'hg'`) reads as harmless only if both are; else as the other, so that neither hides
        behind the first."""
        if isinstance(node, ast.Name) and isinstance(self.env.get(node.id), ast.IfExp):
            node = self.env[node.id]
        if isinstance(node, ast.IfExp):
            both = [self.folder.value(node.body), self.folder.value(node.orelse)]
            if not all(isinstance(v, str) for v in both):
                return None
            return next((v for v in both if not _benign_command(v)), both[0])
        return self.folder.value(node)


_BENIGN_COMMAND = re.compile(
    r"^\s*(?:git|hg|svn|make|cmake|ninja|gcc|g\+\+|cc|c\+\+|clang|nvcc|pkg-config|python\d?(?:\.\d+)?|"
    r"sphinx-build|cython|swig|protoc|rustc|cargo|go|javac|xcrun|uname|which|sw_vers|lsb_release|"
    r"ldconfig|ldd|nproc|sysctl|getconf|llvm-config|mpicc|ar|ranlib|install_name_tool|tox|pytest|"
    # Desktop integration: refresh the menu, MIME and icon caches after installing a launcher.
    r"update-desktop-database|update-mime-database|gtk-update-icon-cache|glib-compile-schemas|"
    r"xdg-desktop-menu|xdg-icon-resource|xdg-mime)(?![\w-])")


# Names a lookup answers without asking any server beyond this machine or its link (the
# empty name included: the resolver answers it as 0.0.0.0 itself).
_LOOPBACK = re.compile(r"localhost\.?|127(?:\.\d{1,3}){3}|::1|0\.0\.0\.0|")
_LOCAL_SUFFIX = re.compile(r"\.(?:local|localhost|localdomain|home\.arpa)\.?")


def _loopback(value: object) -> bool:
    return isinstance(value, str) and bool(_LOOPBACK.fullmatch(value.strip().lower()))


# Tools that resolve a host name: the name itself reaches the name server of its domain.
_DNS_TOOL = re.compile(r"^\s*(?:dig|nslookup|host|drill|ping)(?:\.exe)?(?:\s|$)", re.IGNORECASE)
# Fields of uname() that say which OS or CPU, not which host (index 1 and .node are the name).
_UNAME_OS_FIELDS = frozenset({"system", "sysname", "release", "version", "machine", "processor"})


def _os_field(node: ast.AST) -> bool:
    """Whether ``node`` reads an OS or CPU field of the call it holds (``uname()[4]``,
    ``uname().machine``); the caller checks that the call is uname()."""
    if isinstance(node, ast.Attribute):
        return node.attr in _UNAME_OS_FIELDS
    index = node.slice
    return isinstance(index, ast.Constant) and isinstance(index.value, int) \
        and not isinstance(index.value, bool) and index.value >= 0 and index.value != 1


_DESTRUCTIVE = re.compile(
    r"\brm\s+-[a-z]*r[a-z]*f?\s+(?:/|~|\$home)\s*(?:$|\*)|^\s*(?:sudo\s+)?(?:shutdown|poweroff|halt|reboot)\b|"
    r"\bformat\s+[a-z]:|\bdel\s+/[fsq]|\bmkfs\b|:\(\)\s*\{", re.IGNORECASE)
# Windows launches of a file: "start x.exe", "cmd /c ...". PowerShell run directly is a
# process like any other (Stop-Service, Get-Clipboard, opening a browser: awscli, pandas,
# azure-identity); what it downloads, decodes or hides is matched by the indicators.
_LAUNCH = re.compile(r"^\s*start\s|cmd(?:\.exe)?\s+/[ck]\s+(?:start|powershell|curl|"
                     r"certutil|bitsadmin|mshta|\S+\.(?:exe|bat|vbs|ps1|scr)\b)", re.IGNORECASE)


def _span(node: ast.AST, offset: int) -> tuple[int, int]:
    first = getattr(node, "lineno", 1) + offset
    return first, (getattr(node, "end_lineno", None) or first) + offset


def _argv_guard(test: ast.AST) -> bool:
    """A test of sys.argv against command names of which none runs at install."""
    argv, names = False, []
    for sub in ast.walk(test):
        if isinstance(sub, ast.Attribute) and sub.attr == "argv":
            argv = True
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            names.append(sub.value)
        elif isinstance(sub, (ast.Call, ast.BinOp, ast.JoinedStr)):
            return False   # a command name built at run time hides which command it is
    return argv and bool(names) and all(re.fullmatch(r"[a-z][a-z0-9_-]*", n) for n in names) \
        and not any(n in RUN_AT_INSTALL or n.startswith(("install", "build", "bdist", "develop"))
                    for n in names)


def _dangerous(name: str) -> bool:
    return (name in EXEC or name in PROC or name in NET or name in DECODERS
            or name.startswith(PROC_PREFIXES + NET_PREFIXES)
            or name in ("os", "subprocess", "builtins", "socket", "base64", "marshal", "zlib",
                        "urllib.request", "requests", "ctypes", "__import__", "getattr",
                        "importlib", "pty", "codecs", "os.environ"))


def _benign_command(command: str) -> bool:
    return bool(_BENIGN_COMMAND.match(command)) and not re.search(
        r"https?://|curl|wget|powershell|\|\s*sh\b|base64", command, re.IGNORECASE)


def _builtin(name: str) -> str:
    """A builtin reached through builtins/__builtins__/globals() is called by its bare name."""
    return name


def _interesting(name: str) -> bool:
    return (name in EXEC or name in PROC or name in NET or name in DNS or name in DECODERS
            or name in KNOWN_MODULES or name.startswith(PROC_PREFIXES + NET_PREFIXES)
            or name in ("getattr", "__import__", "marshal.loads", "os.environ"))


def _decode_chain(func: str, text: str, spend: DecodeBudget) -> object:
    from .folding import decode

    out = decode(func, text, [], spend)
    if out is NO or not isinstance(out, bytes) or len(out) < 16:
        return NO
    # Compressed layers under the encoding.
    for _ in range(4):
        if out[:2] in (b"x\x9c", b"x\xda", b"x\x01", b"x^"):
            nxt = decode("zlib.decompress", out, [], spend)
        elif out[:3] == b"BZh":
            nxt = decode("bz2.decompress", out, [], spend)
        elif out[:6] == b"\xfd7zXZ\x00":
            nxt = decode("lzma.decompress", out, [], spend)
        elif out[:2] == b"\x1f\x8b":
            nxt = decode("gzip.decompress", out, [], spend)
        else:
            break
        if nxt is NO:
            break
        out = nxt
    return out
