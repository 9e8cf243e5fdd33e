"""A verdict recomputed from stored findings equals the scanner's own, and drops what an
administrator marked a false positive."""

from __future__ import annotations

from bastion.core.scanning import scan
from bastion.core.scanning.verdicts import recomputed, score_of
from tests.unit.scanning.support import malicious_sdist, suspicious_sdist


def _scanned(tmp_path, artifact):
    path = tmp_path / artifact.filename
    path.write_bytes(artifact.build())
    return scan(str(path))


def test_recomputing_every_finding_gives_the_scanners_own_verdict_and_score(tmp_path):
    for artifact in (malicious_sdist("rc-evil"), suspicious_sdist("rc-odd")):
        result = _scanned(tmp_path, artifact)
        verdict, score = recomputed((f.file, f.rule, f.weight) for f in result.findings)
        assert (verdict, round(score, 6)) == (result.verdict, round(result.score, 6))


def test_leaving_a_finding_out_lowers_the_verdict(tmp_path):
    result = _scanned(tmp_path, suspicious_sdist("rc-fp"))
    assert result.verdict == "suspicious"
    kept = [(f.file, f.rule, f.weight) for f in result.findings if f.rule != "proc-exec"]
    assert recomputed(kept)[0] == "clean"
    assert score_of([]) == 0.0


def test_the_strongest_weight_of_a_rule_in_a_file_counts_once():
    assert score_of([("a.py", "r", 2.0), ("a.py", "r", 3.0)]) == 3.0
    assert score_of([("a.py", "r", 3.0), ("b.py", "r", 3.0)]) == 3.0 + 0.2 * 3.0
