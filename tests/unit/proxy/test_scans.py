"""The scanner's verdicts on cached upstream files and the pages they may change."""

from __future__ import annotations

from bastion.events import tags
from bastion.events.models import SecurityEvent
from bastion.proxy import scans
from bastion.proxy.models import UpstreamProject

from .upstream_files import (  # noqa: F401 (upstream, upstream_server: fixtures)
    make_file,
    upstream,
    upstream_server,
)


def _serial(file) -> int:
    return UpstreamProject.objects.get(pk=file.project_id).serial


def test_a_verdict_moves_the_page_serial_only_when_a_policy_could_hide_on_it(upstream):
    name = f"{upstream.name}-demo"
    file = make_file(upstream, name, f"{name.replace('-', '_')}-1.0-py3-none-any.whl",
                     upstream.url + "f.whl", sha256="a" * 64, size=1)
    start = _serial(file)

    # Not scanned -> clean or a scan error: no policy shows the page differently.
    assert scans.set_verdict(file.pk, "clean")
    assert _serial(file) == start
    assert scans.set_verdict(file.pk, "error")
    assert _serial(file) == start
    # Into and out of a verdict a policy hides on: pages are rendered again.
    assert scans.set_verdict(file.pk, "suspicious")
    assert _serial(file) == start + 1
    assert scans.set_verdict(file.pk, "malicious")
    assert _serial(file) == start + 2
    assert scans.set_verdict(file.pk, "clean")
    assert _serial(file) == start + 3
    # Every verdict is a security event all the same.
    assert SecurityEvent.objects.filter(tag=tags.PROXY_FILE_SCAN,
                                        additional__filename=file.filename).count() == 5
    assert not scans.set_verdict(10 ** 9, "clean")
