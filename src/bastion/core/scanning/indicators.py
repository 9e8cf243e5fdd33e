"""Indicators found in strings: where data goes, what is read, what is run.

Every string constant of the code, every string the folding rebuilt and every decoded payload
is matched here; a match names a rule. The patterns are case-insensitive and bounded (no
nested quantifiers), so a hostile string costs linear time.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter

# Each indicator: its rule, literal anchors (the regex runs only when one occurs: a substring
# test is far cheaper than a regex over a large source) and the regex, over lower-cased text.
def _minimal(anchors: tuple[str, ...]) -> tuple[bytes, ...]:
    """The anchors no other anchor of the rule is part of: each costs a pass over the text."""
    return tuple(a.encode() for a in anchors if not any(b != a and b in a for b in anchors))


PATTERNS: tuple[tuple[str, tuple[bytes, ...], re.Pattern[bytes]], ...] = tuple(
    (rule_id, _minimal(anchors), re.compile(pattern.encode()))
    for rule_id, anchors, pattern in (
        ("exfil-webhook", ("webhooks/", "telegram.org/bot", "hooks.slack.com", "/messages"),
         r"discord(?:app)?\.com/api/(?:v\d+/)?webhooks/|api\.telegram\.org/bot|hooks\.slack\.com/"
         r"(?:services|workflows)/|discord\.com/api/v\d+/channels/\d+/messages"),
        ("exfil-paste", ("pastebin", "paste.", "hastebin", "ghostbin", "termbin", "filebin",
                         "dpaste", "pastie", "justpaste", "privatebin", "transfer.sh", "anonfiles",
                         "gofile", "0x0.st", "rentry", "temp.sh", "catbox", "file.io", "controlc",
                         "bashupload"),
         r"\b(?:pastebin\.com|paste\.ee|hastebin\.com|ghostbin\.|rentry\.(?:co|org)|transfer\.sh|"
         r"anonfiles\.com|gofile\.io|termbin\.com|0x0\.st|paste\.rs|dpaste\.(?:com|org)|"
         r"controlc\.com|bashupload\.com|temp\.sh|catbox\.moe|filebin\.net|file\.io/|"
         r"pastie\.io|justpaste\.it|privatebin\.)"),
        ("exfil-oast", ("burpcollab", "oastify", "oast.", "interact", "requestbin", "pipedream", "webhook.site",
                        "canarytokens", "dnslog", "ceye.io", "ngrok", "trycloudflare", "serveo",
                        "loca.lt", "beeceptor", "requestcatcher", "hookbin", "xss.ht", "dnsbin",
                        "bxss", "requestrepo", "glitch.me", "iplogger", "grabify"),
         r"\b(?:burpcollaborator\.net|oastify\.com|interact\.sh|interactsh|oast\.(?:pro|live|site|"
         r"online|fun|me)|requestbin|pipedream\.net|webhook\.site|canarytokens\.|dnslog\.cn|"
         r"ceye\.io|ngrok\.io|ngrok-free\.app|ngrok\.app|trycloudflare\.com|serveo\.net|"
         r"loca\.lt|beeceptor\.com|requestcatcher\.com|hookbin\.com|xss\.ht|dnsbin|bxss\.me|"
         r"requestrepo\.com|glitch\.me|iplogger\.(?:org|com|ru|co)|grabify\.link)"),
        ("cred-metadata", ("169.254.169.254", "metadata.google.internal", "100.100.100.200",
                           "fd00:ec2::254"),
         r"169\.254\.169\.254|metadata\.google\.internal|100\.100\.100\.200|fd00:ec2::254"),
        ("cred-browser", ("login data", "local state", "web data", "user data", "logins.json",
                          "key4.db", "cookies.sqlite", "bravesoftware", "opera software",
                          "yandexbrowser", "chrome"),
         r"[\\/'\"]login data['\"]|[\\/'\"]local state['\"]|[\\/'\"]web data['\"]|"
         r"user data[\\/]+default|logins\.json|key4\.db|"
         r"cookies\.sqlite|bravesoftware[\\/]|opera software[\\/]|yandexbrowser[\\/]|"
         r"google[\\/]+chrome[\\/]"),
        ("cred-files", (".ssh", ".aws", ".git-credentials", ".pypirc", ".npmrc", ".docker",
                        ".kube", "/etc/shadow", ".bash_history", "application_default", ".netrc"),
         r"\.ssh[\\/]+(?:id_|authorized_keys|known_hosts)|~/\.ssh\b|\.aws[\\/]+credentials|"
         r"\.git-credentials|\.pypirc|\.npmrc|\.docker[\\/]+config\.json|\.kube[\\/]+config|"
         r"/etc/shadow|\.bash_history|application_default_credentials\.json|\.netrc\b"),
        ("cred-wallet", ("exodus", "electrum", "wallet.dat", "ethereum", "nkbihfbeogaeaoehlefnkodbefgpgknn",
                         "atomic", "coinomi", "armory/", "armory\\", "zcash", "jaxx", "guarda/", "guarda\\",
                         "metamask"),
         r"exodus[\\/. ]+wallet|exodus[\\/]+exodus|electrum[\\/]+wallets|wallet\.dat|"
         r"ethereum[\\/]+keystore|nkbihfbeogaeaoehlefnkodbefgpgknn|atomic[\\/]+local storage|"
         r"\bcoinomi\b|armory[\\/]|zcash[\\/]|jaxx[\\/]|guarda[\\/]|metamask"),
        ("cred-discord-token", ("discord", "leveldb", "dqw4w9wgxcq"),
         r"discord(?:canary|ptb)?[\\/]+local storage|local storage[\\/]+leveldb|dqw4w9wgxcq:|"
         r"discord[^\n]{0,200}[\w-]{24}\.[\w-]{6}\.[\w-]{27}"),
        ("persist-startup", ("startup", "currentversion", "schtasks"),
         r"start menu[\\/]+programs[\\/]+startup|currentversion[\\/]+run\b|\bschtasks\b|"
         r"\\startup\\"),
        ("persist-unix", ("crontab", "/etc/cron", ".bashrc", ".bash_profile", ".zshrc", "systemd/user",
                          "launchagents", "rc.local", "init.d", ".profile"),
         # .profile only as a file name (~/.profile, '.profile'), not an attribute (self.profile)
         # or a relative import (from .profile import ...).
         r"\bcrontab\b|/etc/cron|\.bashrc\b|\.bash_profile\b|\.zshrc\b|systemd/user|"
         r"launchagents|/etc/rc\.local|/etc/init\.d/|(?:^|[/\\~'\"])\.profile\b"),
        ("proc-shell-download", ("curl", "wget", "powershell", "certutil", "bitsadmin", "mshta",
                                 "/dev/tcp", "nc -e", "bash -i", "regsvr32", "chmod"),
         r"curl\s[^|;\n]{0,200}\|\s*(?:sudo\s+)?(?:ba|z)?sh\b|wget\s[^\n]{0,200}(?:\||&&|;)\s*"
         r"(?:ba|z)?sh\b|wget\s+-q?o-\s[^\n]{0,200}\|\s*(?:sudo\s+)?(?:ba|z)?sh\b|powershell[^\n]{0,80}(?:-e(?:nc(?:odedcommand)?)?\s|"
         r"iex|invoke-expression|downloadstring|downloadfile|invoke-webrequest|\biwr\b|"
         r"-w(?:indowstyle)?\s+hidden|-(?:ep|ex(?:ecutionpolicy)?)\s+bypass\b|frombase64string)|certutil(?:\.exe)?\s+-urlcache|bitsadmin\s+/transfer|"
         r"mshta\s+http|/dev/tcp/|\bnc\s+-e\s|bash\s+-i\s|regsvr32\s[^\n]{0,40}/i:http|"
         r"(?:curl|wget)\s[^\n]{0,300}(?:&&|;)\s*chmod\s+\+?[0-7x]+[^\n]{0,100}(?:&&|;)\s*\./"),
        ("drop-exe-url", (".exe", ".dll", ".ps1", ".vbs", ".hta", ".msi", ".scr'", '.scr"', ".bat'",
                          '.bat"', ".cmd'", '.cmd"', "cdn.discordapp.com/attachments"),
         r"https?://(?!(?:www\.)?example\.(?:com|org|net)\b|[^/\s'\"]*\.(?:invalid|test|localhost)\b)"
         r"[^\s'\"<>]{1,300}?\.(?:exe|dll|scr|bat|ps1|vbs|hta|msi|cmd)\b|"
         r"cdn\.discordapp\.com/attachments/"),
        ("recon-host", ("ipify", "ipinfo.io", "ifconfig.me", "icanhazip", "checkip", "ip-api.com",
                        "wtfismyip", "myexternalip"),
         r"api\.ipify\.org|ipinfo\.io|ifconfig\.me|icanhazip\.com|checkip\.amazonaws\.com|"
         r"ip-api\.com|wtfismyip|myexternalip"),
        ("obf-packer", ("pyarmor", "pytransform", "__armor_enter__", "blankobf", "pyobfuscate",
                        "__obfuscator__"),
         r"__pyarmor__|pyarmor_runtime|from pytransform import|__armor_enter__|"
         r"blankobf|pyobfuscate\.com|__obfuscator__"),
    )
)

# Letters lower-cased, digits and "_" kept, every other byte a space: the words of a text.
_WORD_BYTES = bytes(ord(chr(c).lower()) if chr(c).isascii() and (chr(c).isalnum() or c == 95) else 32
                    for c in range(256))


def words(data: bytes) -> bytes:
    """The distinct words of ``data``, lower-cased, one space between them.

    Python source repeats its names, so this is a fifth of the text or less; every needle's
    longest word (see _key) is looked up here first, and only a needle whose word occurs is
    searched in the text itself. A needle that occurs in the text always passes (its word
    lies inside one of the text's words, and the space between words is in no needle's word),
    so the results are those of searching the text directly, at a fraction of the cost."""
    return b" ".join(set(data.translate(_WORD_BYTES).split()))


def _key(needle: bytes) -> bytes:
    """The needle's longest run of letters, digits and "_", lower-cased."""
    return max(needle.translate(_WORD_BYTES).split(), key=len)


# Below this size a text stands for its own words: listing them would cost more than it saves.
_WORDS_FROM = 2048
_ANCHOR_KEYS = {anchor: _key(anchor) for _, anchors, _ in PATTERNS for anchor in anchors}
_KEYS = tuple(sorted(set(_ANCHOR_KEYS.values())))

_RAW_IP_URL = re.compile(rb"://(\d{1,3}(?:\.\d{1,3}){3})(?=[:/'\"\s]|$)")
_SCHEME = re.compile(rb"(?:https?|ftp|tcp|wss?)$")


def match(text: str | bytes) -> list[tuple[str, str]]:
    """(rule id, matched text) for each indicator in ``text``."""
    return [(rule_id, snippet) for rule_id, snippet, _ in locate(text)]


def locate(text: str | bytes, text_words: bytes | None = None) -> list[tuple[str, str, int]]:
    """(rule id, matched text, byte offset) for the first match of each indicator in ``text``;
    ``text_words``: its words(), if the caller has them already.

    Works on bytes: sources are mostly ASCII, and bytes are lower-cased and searched far faster
    than a str holding a single non-ASCII character."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    lower = data.lower()
    if text_words is None:
        text_words = words(data) if len(data) > _WORDS_FROM else lower
    present = {key for key in _KEYS if key in text_words}
    found = []
    for rule_id, anchors, pattern in PATTERNS:
        live = [anchor for anchor in anchors if _ANCHOR_KEYS[anchor] in present]
        hit = _search_near(lower, live, pattern) if live else None
        if hit:
            found.append((rule_id, _show(data[hit.start():hit.end()]), hit.start()))
    if b"://" in lower:
        for hit in _RAW_IP_URL.finditer(lower):
            scheme = _SCHEME.search(lower, max(0, hit.start() - 5), hit.start())
            if not scheme:
                continue
            try:
                address = ipaddress.ip_address(hit.group(1).decode())
            except ValueError:
                continue
            if address.is_global:
                found.append(("exfil-raw-ip", _show(data[scheme.start():hit.end()]), hit.start()))
                break
    return found


_WINDOW = 400          # a match lies within this many bytes of its anchor
_MAX_ANCHOR_HITS = 8   # occurrences of one anchor looked at


def _search_near(lower: bytes, anchors: tuple[bytes, ...] | list[bytes], pattern: re.Pattern[bytes]):  # noqa: ANN202
    """The first match of ``pattern`` near an occurrence of one of its anchors: the regex runs
    on small windows, never over a whole large source."""
    best = None
    for anchor in anchors:
        position = lower.find(anchor)
        seen = 0
        while position >= 0 and seen < _MAX_ANCHOR_HITS:
            seen += 1
            hit = pattern.search(lower, max(0, position - _WINDOW), position + len(anchor) + _WINDOW)
            if hit:
                if best is None or hit.start() < best.start():
                    best = hit
                break
            position = lower.find(anchor, position + len(anchor) + _WINDOW)
    return best


def _show(snippet: bytes) -> str:
    return snippet[:120].decode("utf-8", "replace")


# Source that matches none of these has nothing for the syntax analysis to find: no call that
# runs code or programs, reaches the network, reads the host, or hides a name or a payload.
TRIGGER = re.compile(
    rb"\b(?:exec|eval|compile|execfile|__import__|import_module|getattr|marshal|b64decode|"
    rb"b32decode|b16decode|b85decode|a85decode|unhexlify|fromhex|decompress|codecs|system|popen|"
    rb"Popen|subprocess|startfile|spawn[lvpe]*|execv[pe]*|pty|urlopen|urlretrieve|requests|httpx|"
    rb"urllib3?|http\.client|socket|environ|getuser|gethostname|getlogin|uname|getnode|"
    rb"clipboard|pyperclip|ctypes|windll|pip|decrypt|Fernet|chr|globals|vars|builtins|zipimport|"
    rb"[Il1]{6,}|_0x[0-9a-fA-F]{3,})\b|"
    # An AI agent's tool: its description is read by a model (see python._TOOL_ORDERS).
    rb"\.tool\(|@tool\b")


_ENCODED = re.compile(r"[A-Za-z0-9+/=_\-\s]+")


def entropy(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def looks_encoded(text: str) -> bool:
    """A long run of base64/hex alphabet with the entropy of encoded data, not prose."""
    return len(text) >= 64 and _ENCODED.fullmatch(text) is not None and " " not in text.strip()


# A module deep in a package is parsed only when it holds one of these (and while the archive's
# parse budget lasts): the calls malware cannot do without, or a long encoded run. Substring
# tests, not one regex: CPython's regex engine tries every alternative at every position.
STRONG_TOKENS = (
    b"exec(", b"eval(", b"exec (", b"eval (", b"execfile", b"__import__", b"import_module",
    b"marshal", b"b64decode", b"b32decode", b"b16decode", b"b85decode", b"a85decode",
    b"unhexlify", b"fromhex", b"os.system", b"popen", b"Popen", b"startfile", b"os.spawn",
    b"os.exec", b"urlopen", b"urlretrieve", b"gethostbyname", b"getaddrinfo", b"getuser",
    b"gethostname", b"getlogin", b"getnode", b"clipboard", b"pyperclip", b"windll", b"Fernet",
    b"__builtins__", b"requests.get", b"requests.post", b"subprocess.run", b"subprocess.call",
    b"subprocess.check_", b"os.environ)", b"environ.copy()", b"IlIl", b"lIlI", b"_0x",
    # The same calls behind an alias the tokens above would not see: ``import os as o`` then
    # ``o.system(...)``, ``from os import system as s``, ``from subprocess import run``.
    b"import os as", b"import subprocess as", b"import system", b"import run", b"import call",
)
_CALL_NOT_METHOD = re.compile(rb"(?<![.\w])(?:exec|eval)\s*\(")
_ENCODED_RUN = re.compile(rb"[A-Za-z0-9+/=]{200}")


# model.eval() and friends are methods, not the builtins: these tokens count only beside a
# call that is not a method's.
_EXEC_TOKENS = tuple(t for t in STRONG_TOKENS if t[:4] in (b"exec", b"eval"))
_OTHER_TOKENS = tuple((_key(t), t) for t in STRONG_TOKENS if t not in _EXEC_TOKENS)


def strong_trigger(data: bytes, text_words: bytes | None = None) -> bool:
    """``text_words``: words(data), if the caller has them already."""
    if text_words is None:
        text_words = words(data) if len(data) > _WORDS_FROM else data.lower()
    for key, token in _OTHER_TOKENS:
        if key in text_words and token in data:
            return True
    if (b"exec" in text_words or b"eval" in text_words) \
            and any(token in data for token in _EXEC_TOKENS) and _CALL_NOT_METHOD.search(data):
        return True
    return has_encoded_run(data)


def has_encoded_run(data: bytes) -> bool:
    """A run of 200 base64/hex characters, looked for only on lines long enough to hold one."""
    if len(data) < 200:
        return False
    lines = data.split(b"\n")
    if max(map(len, lines)) < 200:
        return False
    return any(len(line) >= 200 and _ENCODED_RUN.search(line) for line in lines)
