"""OSV records: parsing real records, their limits, severity levels and version matching."""

from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st
from packaging.version import Version

from bastion.core import osv
from bastion.core.errors import ValidationError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "advisories" / "vulns"


def real(project: str, record_id: str) -> dict:
    return yaml.load((FIXTURES / project / f"{record_id}.yaml").read_text(), Loader=yaml.BaseLoader)


def record(**fields) -> dict:
    data = {"id": "TEST-2026-1", "modified": "2026-01-02T03:04:05Z",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "Demo_Lib"},
                          "ranges": [{"type": "ECOSYSTEM",
                                      "events": [{"introduced": "1.0"}, {"fixed": "1.5"}]}]}]}
    data.update(fields)
    return data


def test_every_fixture_record_parses():
    files = sorted(FIXTURES.glob("*/*.yaml"))
    assert len(files) >= 10
    for path in files:
        parsed = osv.parse(yaml.load(path.read_text(), Loader=yaml.BaseLoader))
        assert parsed.id == path.stem
        assert parsed.names() == (path.parent.name,)


def test_real_requests_record_is_read_in_full():
    r = osv.parse(real("requests", "PYSEC-2023-74"))
    assert r.aliases == ("CVE-2023-32681", "GHSA-j8r2-6x86-q33q")
    assert r.modified == datetime(2023, 6, 5, 1, 13, 0, 534973, tzinfo=timezone.utc)
    assert r.published == datetime(2023, 5, 26, 18, 15, tzinfo=timezone.utc)
    assert r.withdrawn is None
    assert r.summary == "" and "Proxy-Authorization" in r.details
    assert ("FIX", "https://github.com/psf/requests/commit/74ea7cf7a6a27a4eeb2ae24e162bcc942a6706d5") in r.references
    # The GIT range names commits: only the ECOSYSTEM range is kept.
    assert r.affected[0].ranges == (osv.Range((("introduced", "2.3.0"), ("fixed", "2.31.0"))),)
    assert r.fixed_in("Requests") == ("2.31.0",)
    assert osv.affects(r, "requests", "2.30.0")
    assert osv.affects(r, "requests", "2.3.0")
    assert not osv.affects(r, "requests", "2.31.0")
    assert not osv.affects(r, "requests", "2.2.1")
    assert not osv.affects(r, "urllib3", "2.30.0")


def test_withdrawn_record_keeps_its_withdrawal_time():
    r = osv.parse(real("redis", "PYSEC-2023-73"))
    assert r.withdrawn == datetime(2023, 6, 6, 10, 37, tzinfo=timezone.utc)


def test_last_affected_includes_that_version_and_nothing_after():
    r = osv.parse(real("py", "PYSEC-2022-42969"))
    assert osv.affects(r, "py", "1.11.0")
    assert osv.affects(r, "py", "0.9")
    assert not osv.affects(r, "py", "1.11.1")
    assert r.fixed_in("py") == ()


def test_cvss_v3_vector_gives_the_level():
    r = osv.parse(real("aiohttp", "PYSEC-2023-246"))
    assert osv.cvss3_base_score(r.cvss[0][1]) == 7.5
    assert r.severity == "high"


@pytest.mark.parametrize("vector, score", [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
    ("CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.8),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
])
def test_cvss3_base_scores_match_the_specification(vector, score):
    assert osv.cvss3_base_score(vector) == score


def test_cvss2_and_malformed_vectors():
    assert osv.cvss2_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P") == 7.5
    assert osv.cvss3_base_score("CVSS:3.1/AV:N") is None
    assert osv.cvss3_base_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") is None


def test_severity_is_the_highest_level_any_source_gives():
    data = record(severity=[{"type": "CVSS_V3",
                             "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"}],
                  database_specific={"severity": "CRITICAL"})
    assert osv.parse(data).severity == "critical"
    assert osv.parse(record(database_specific={"severity": "MEDIUM"})).severity == "moderate"
    # A CVSS 4.0 vector is not scored: without another source the record has no level.
    v4 = record(severity=[{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}])
    assert osv.parse(v4).severity is None
    assert not osv.level_at_least(None, "low")
    assert osv.level_at_least("high", "moderate") and not osv.level_at_least("moderate", "high")


def test_only_pypi_entries_are_kept_under_normalized_names():
    data = record(affected=[
        {"package": {"ecosystem": "npm", "name": "demo-lib"}, "versions": ["1.0"]},
        {"package": {"ecosystem": "PyPI", "name": "Demo.Lib"}, "versions": ["2.0"]},
    ])
    r = osv.parse(data)
    assert r.names() == ("demo-lib",)
    assert osv.affects(r, "DEMO_lib", "2.0") and not osv.affects(r, "demo-lib", "1.0")


def test_explicit_versions_match_by_pep440_equality_and_invalid_ones_only_verbatim():
    r = osv.parse(record(affected=[{"package": {"ecosystem": "PyPI", "name": "demo"},
                                    "versions": ["1.0", "weird-build"],
                                    "ranges": [{"type": "ECOSYSTEM",
                                                "events": [{"introduced": "0"}]}]}]))
    assert osv.affects(r, "demo", "1.0.0")
    assert osv.affects(r, "demo", "weird-build")
    # Every parsable version is in the open range; an unparsable one unless listed is not.
    assert osv.affects(r, "demo", "7.0")
    assert not osv.affects(r, "demo", "other-build")


def test_limit_bounds_a_range_and_reintroduction_is_honoured():
    r = osv.parse(record(affected=[{"package": {"ecosystem": "PyPI", "name": "demo"},
                                    "ranges": [{"type": "ECOSYSTEM", "events": [
                                        {"introduced": "0"}, {"fixed": "1.0"},
                                        {"introduced": "2.0"}, {"fixed": "2.1"},
                                        {"introduced": "3.0"}, {"limit": "3.5"}]}]}]))
    assert [v for v in ["0.5", "1.0", "1.5", "2.0", "2.0.1", "2.1", "3.0", "3.4", "3.5", "4"]
            if osv.affects(r, "demo", v)] == ["0.5", "2.0", "2.0.1", "3.0", "3.4"]


def test_prereleases_are_ordered_by_pep440():
    r = osv.parse(record())
    assert osv.affects(r, "demo-lib", "1.5rc1")
    assert not osv.affects(r, "demo-lib", "1.0rc1")
    assert osv.affects(r, "demo-lib", "1.0.post1")


@pytest.mark.parametrize("change, message", [
    ({"id": None}, "'id' is missing"),
    ({"id": "bad id"}, "'id' must be"),
    ({"modified": None}, "'modified' is missing"),
    ({"modified": "yesterday"}, "not an RFC 3339 time"),
    ({"schema_version": "2.0.0"}, "only 1.x"),
    ({"aliases": ["A"] * (osv.MAX_ALIASES + 1)}, "more than"),
    ({"details": "x" * (osv.MAX_DETAILS_LENGTH + 1)}, "longer than"),
    ({"affected": [{"package": {"ecosystem": "PyPI", "name": "d"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"broken": "1"}]}]}]},
     "unknown range event"),
    ({"affected": [{"package": {"ecosystem": "PyPI", "name": "d"},
                    "versions": ["1"] * (osv.MAX_VERSIONS + 1)}]}, "more than"),
])
def test_bad_records_are_refused_with_one_line(change, message):
    data = record()
    data.update(change)
    with pytest.raises(ValidationError) as exc:
        osv.parse(data)
    assert message in exc.value.message and "\n" not in exc.value.message


def test_times_are_written_with_z():
    assert osv.format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "2026-01-02T03:04:05Z"
    assert osv.format_time(None) is None


_versions = st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.integers(0, 5), st.integers(0, 5),
                      st.integers(0, 5))


@settings(max_examples=200, deadline=None, database=None)
@given(introduced=_versions, fixed=_versions, version=_versions)
def test_a_single_range_affects_from_introduced_up_to_but_not_fixed(introduced, fixed, version):
    r = osv.parse(record(affected=[{"package": {"ecosystem": "PyPI", "name": "demo"},
                                    "ranges": [{"type": "ECOSYSTEM", "events": [
                                        {"introduced": introduced}, {"fixed": fixed}]}]}]))
    low, high, v = Version(introduced), Version(fixed), Version(version)
    # Events are walked in version order: a fix before the introduction closes nothing.
    expected = low <= v < high if low <= high else low <= v
    assert osv.affects(r, "demo", version) == expected


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None, database=None)
@given(extra=st.dictionaries(st.sampled_from(["id", "modified", "aliases", "affected",
                                              "severity", "references", "summary",
                                              "withdrawn", "database_specific"]), _json))
def test_any_json_is_parsed_or_refused_with_validation_error(extra):
    data = record()
    data.update(extra)
    try:
        r = osv.parse(data)
    except ValidationError:
        return
    for name in r.names():
        osv.affects(r, name, "1.0")


def test_queries_by_name_or_purl():
    q = osv.parse_query({"package": {"name": "Demo_Lib", "ecosystem": "PyPI"}, "version": "1.0"})
    assert q == osv.Query("PyPI", "demo-lib", "1.0")
    assert osv.parse_query({"package": {"purl": "pkg:pypi/Demo.Lib@2.0"}}) == osv.Query(
        "PyPI", "demo-lib", "2.0")
    assert osv.parse_query({"package": {"purl": "pkg:npm/left-pad"}}).ecosystem == "npm"
    with pytest.raises(ValidationError, match="not both"):
        osv.parse_query({"package": {"purl": "pkg:pypi/x@1"}, "version": "2"})
    with pytest.raises(ValidationError, match="At most 1000"):
        osv.parse_batch({"queries": [{}] * 1001})


@settings(max_examples=200, deadline=None, database=None)
@given(data=_json)
def test_any_query_is_parsed_or_refused_with_validation_error(data):
    for candidate in (data, {"package": data}, {"queries": [data]}):
        try:
            osv.parse_query(candidate)
        except ValidationError:
            pass
        try:
            osv.parse_batch(candidate)
        except ValidationError:
            pass


@pytest.mark.parametrize("specifier, flagged", [
    ("==2.30.0", True),      # pinned to an affected version
    ("<2.31", True),         # excludes the fix
    (">=2.0,<2.31", True),
    ("", False),             # the fix may be picked
    (">=2.31", False),
    ("<2.3", False),         # before the vulnerability was introduced
    ("==2.31.0", False),
])
def test_a_requirement_is_flagged_when_it_allows_only_vulnerable_versions(specifier, flagged):
    from packaging.specifiers import SpecifierSet

    (entry,) = osv.parse(real("requests", "PYSEC-2023-74")).affected
    assert osv.requirement_keeps_vulnerable(SpecifierSet(specifier), entry) == flagged


def test_a_real_malicious_package_record():
    import json

    data = json.loads((FIXTURES.parents[1] / "osv-zip" / "MAL-2024-9933.json").read_text())
    r = osv.parse(data)
    assert r.malicious and r.names() == ("3web",) and r.severity is None
    # Its nanosecond import times sit in database_specific, which is kept as it is.
    assert r.modified == datetime(2025, 12, 11, 9, 27, 52, tzinfo=timezone.utc)
    assert osv.affects(r, "3web", "1.0.0") and not osv.affects(r, "3web", "1.0.1")
