"""The scanner's rules, as data: what each finding means and how much it weighs.

A rule's weight is what one finding adds to a file's score before its context (install time,
import time, package code, tests and docs) scales it; an administrator can disable rules by id.
``RULESET_VERSION`` changes whenever a rule is added, removed or re-weighted, so a verdict says
which rules produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

RULESET_VERSION = "2026.12.10"

LOW, MEDIUM, HIGH, CRITICAL = "low", "medium", "high", "critical"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    weight: float
    message: str


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.id: rule for rule in rules}


RULES: dict[str, Rule] = _rules(
    # Code that runs when the package is installed or imported.
    Rule("install-hook", LOW, 2, "setup.py replaces the install, develop or egg_info command with its own code"),
    Rule("install-code", MEDIUM, 3, "setup.py does more at install time than describe the package"),
    Rule("build-backend-hook", LOW, 2, "pyproject.toml builds with a backend shipped inside the package"),
    Rule("pth-exec", HIGH, 8, "a .pth file holds an import line that runs, fetches or hides code at every start"),
    Rule("pth-import", MEDIUM, 2, "a .pth file imports a module at every start of Python"),
    # Running code and processes.
    Rule("exec-dynamic", MEDIUM, 3, "exec, eval or compile of a string built at run time"),
    Rule("exec-decoded", CRITICAL, 10, "exec or eval of data that is decoded, decompressed or decrypted first"),
    Rule("exec-marshal", CRITICAL, 10, "code objects loaded with marshal"),
    Rule("proc-exec", MEDIUM, 3, "runs a program (subprocess, os.system, os.popen, os.exec*)"),
    Rule("proc-shell-download", CRITICAL, 10, "a shell command that downloads or runs a payload (curl|sh, wget, PowerShell, certutil, cmd /c start)"),
    Rule("proc-install-package", MEDIUM, 4, "installs another package at run time (pip install from code)"),
    Rule("proc-destructive", HIGH, 8, "a command that destroys data or stops the machine (rm -rf, shutdown, format)"),
    Rule("download-exec", CRITICAL, 10, "downloads content and runs it or writes it to disk to run"),
    Rule("net-call", LOW, 2, "opens network connections (urllib, requests, http.client, socket)"),
    # Exfiltration.
    Rule("exfil-webhook", HIGH, 8, "a Discord, Telegram or Slack webhook or bot endpoint"),
    Rule("exfil-paste", MEDIUM, 5, "a paste or anonymous file-drop site"),
    Rule("exfil-oast", HIGH, 8, "a request-bin or out-of-band (OAST) collector domain"),
    Rule("exfil-raw-ip", HIGH, 6, "a URL to a raw public IP address"),
    Rule("exfil-dns", HIGH, 7, "a DNS lookup of a host name built from data (DNS tunnelling)"),
    Rule("exfil-hidden-url", HIGH, 6, "sends to a network address hidden by encoding or assembly (base64, hex, chr() codes)"),
    Rule("exfil-secret", HIGH, 7, "sends a private key, seed phrase or secret key over the network"),
    Rule("exfil-host-data", HIGH, 7, "collects the host's identity or environment and sends it over the network"),
    Rule("recon-host", LOW, 1, "collects the host's identity (user, host name, address, working directory)"),
    # Credentials and secrets.
    Rule("cred-browser", HIGH, 7, "reads browser profile stores (Login Data, Cookies, Local State)"),
    Rule("cred-files", MEDIUM, 5, "reads credential files (~/.ssh, ~/.aws, .git-credentials, .pypirc, .npmrc, kube config)"),
    Rule("cred-metadata", MEDIUM, 4, "queries the cloud metadata endpoint (169.254.169.254)"),
    Rule("cred-env-dump", MEDIUM, 4, "dumps the whole environment"),
    Rule("cred-wallet", HIGH, 7, "reads cryptocurrency wallet files (Exodus, Electrum, MetaMask, ...)"),
    Rule("cred-discord-token", HIGH, 8, "reads Discord token stores"),
    Rule("cred-clipboard", MEDIUM, 4, "reads or replaces the clipboard"),
    # Persistence.
    Rule("persist-startup", HIGH, 7, "writes to a Windows startup folder or Run registry key"),
    Rule("persist-unix", MEDIUM, 4, "installs a cron job, shell rc line, systemd unit or LaunchAgent"),
    # Obfuscation.
    Rule("obf-builtin-lookup", HIGH, 6, "fetches a builtin or module by a computed name (getattr(__builtins__, ...), __import__)"),
    Rule("obf-packer", HIGH, 7, "packed or encrypted code (PyArmor-style)"),
    Rule("obf-long-line", LOW, 2, "a very long line of code"),
    Rule("obf-entropy-blob", LOW, 2, "a long high-entropy encoded string"),
    Rule("obf-identifiers", MEDIUM, 3, "identifiers that look machine-obfuscated"),
    Rule("obf-decoded-code", HIGH, 6, "Python source hidden in an encoded or compressed string"),
    Rule("obf-embedded-binary", HIGH, 8, "an executable (PE, ELF or Mach-O) hidden in an encoded string"),
    # Dropped binaries and payload URLs.
    Rule("drop-binary", MEDIUM, 4, "an executable (ELF, PE or Mach-O) inside a source distribution"),
    Rule("drop-exe-url", HIGH, 7, "a URL to an executable or script payload (.exe, .dll, .scr, .bat, .ps1, .vbs)"),
    Rule("win-api", LOW, 1, "calls the Windows API through ctypes"),
    # AI agents' tools.
    Rule("inject-tool-prompt", HIGH, 7, "an AI agent tool whose description gives the model hidden orders (tool poisoning)"),
    # Metadata tricks.
    Rule("meta-typosquat", LOW, 2, "the name is one edit away from a popular project"),
    Rule("meta-empty-description", LOW, 2, "no real description, yet custom install-time code"),
)


def rule(rule_id: str) -> Rule:
    return RULES[rule_id]
