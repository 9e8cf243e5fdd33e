"""The scanner's verdicts on fetched upstream files, as the views' policies read them.

The scanning app (above the proxy) decides; this module only writes the verdict on the cache
row and, when the verdict is one a view's policy can hide on, moves the page's serial, so that
pages rendered before the verdict are rendered again and judged by it. A clean verdict moves
nothing: rendering a page of thousands of files again for each file scanned would cost the
next install of every project whose files were just fetched. Serving a page reads the
verdicts once per rendering, never per request.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from bastion.core import policy as core_policy
from bastion.events import tags
from bastion.events.services import RequestInfo, record

from .models import UpstreamFile, UpstreamProject


def set_verdict(upstream_file_id: int, verdict: str, *, score: float = 0.0,
                ruleset: str = "", info: RequestInfo | None = None) -> bool:
    """Record the verdict on a cached upstream file; False when there is no such row."""
    with transaction.atomic():
        row = (UpstreamFile.objects.select_related("project__upstream")
               .filter(pk=upstream_file_id).first())
        if row is None:
            return False
        UpstreamFile.objects.filter(pk=row.pk).update(scan_verdict=verdict)
        if row.scan_verdict != verdict and (core_policy.verdict_may_hide(row.scan_verdict)
                                            or core_policy.verdict_may_hide(verdict)):
            UpstreamProject.objects.filter(pk=row.project_id).update(serial=F("serial") + 1)
        # Also moves the index's generation: processes drop their cached resolution of the name.
        record(tags.PROXY_FILE_SCAN, info=info, additional={
            "upstream": row.project.upstream.name, "name": row.project.normalized_name,
            "filename": row.filename, "sha256": row.sha256, "verdict": verdict,
            "score": round(score, 2), "ruleset": ruleset})
    return True


def verdicts(project: UpstreamProject) -> dict[str, str]:
    """Filename -> verdict of the page's scanned files (one query per rendering)."""
    return dict(UpstreamFile.objects.filter(project=project, listed=True)
                .exclude(scan_verdict="").values_list("filename", "scan_verdict"))
