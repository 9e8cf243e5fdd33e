from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from bastion.core import policy as pol
from bastion.core.errors import ValidationError
from bastion.core.policy import Candidate, Exempt, Policy, evaluate, next_change, visible_from

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def parse(data=None, default=72):
    return Policy.from_json(data or {}, default_min_age_hours=default)


def upstream(project="demo", version="1.0", *, age=timedelta(days=10), estimated=False, **kw):
    when = NOW - age
    return Candidate(project=project, version=version, filename=f"{project}-{version}.tar.gz",
                     uploaded=None if estimated else when, first_seen=when, **kw)


# --- parsing -------------------------------------------------------------------------------

def test_an_empty_policy_takes_the_default_cooldown_and_round_trips():
    p = parse({})
    assert p.cooldown_hours == 72 and p.min_age_hours is None
    assert p.to_json() == {"min_age_hours": None, "hold_local": False, "frozen_at": None,
                           "allow": [], "deny": [], "deny_licenses": [],
                           "deny_classifiers": [], "license_unknown": "allow",
                           "lookalikes": "block", "hide_vulnerable": None,
                           "hide_scanned": "malicious", "require_provenance": False,
                           "pin_publishers": "off"}


def test_a_full_policy_round_trips_in_canonical_form():
    data = {"min_age_hours": 36, "hold_local": True, "frozen_at": "2026-11-01T00:00:00Z",
            "allow": ["Acme_*", "requests", "django>=5,<6"], "deny": ["evil-*", "urllib3<2"],
            "deny_licenses": ["gpl-3.0-only", "AGPL-3.0-or-later"],
            "deny_classifiers": ["License :: OSI Approved :: GNU Affero General Public License v3"],
            "license_unknown": "deny"}
    p = parse(data)
    out = p.to_json()
    assert out["allow"] == ["acme-*", "requests", "django<6,>=5"]
    assert out["deny_licenses"] == ["GPL-3.0-only", "AGPL-3.0-or-later"]
    assert out["frozen_at"] == "2026-11-01T00:00:00Z"
    assert parse(out) == p and parse(out).to_json() == out


def test_a_date_alone_freezes_at_midnight_utc():
    assert parse({"frozen_at": "2026-11-01"}).frozen_at == datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("data, words", [
    ({"min_age": 3}, "Unknown policy key 'min_age'"),
    ({"min_age_hours": -1}, "'min_age_hours' must be"),
    ({"min_age_hours": True}, "'min_age_hours' must be"),
    ({"min_age_hours": 1.5}, "'min_age_hours' must be"),
    ({"hold_local": "yes"}, "'hold_local' must be"),
    ({"frozen_at": "yesterday"}, "'frozen_at' must be"),
    ({"allow": "requests"}, "'allow' must be a list"),
    ({"allow": [""]}, "Each entry of 'allow'"),
    ({"deny": ["urllib3<<2"]}, "invalid version specifier"),
    ({"deny": ["-bad"]}, "must start with a project name"),
    ({"deny_licenses": ["Not-A-License"]}, "not a known SPDX license id"),
    ({"deny_licenses": ["MIT OR GPL-3.0-only"]}, "is not an SPDX license id"),
    ({"license_unknown": "maybe"}, "'license_unknown' must be"),
    ({"allow": ["x"] * 501}, "too many entries"),
    ([], "must be a JSON object"),
])
def test_bad_policies_are_refused_in_one_line(data, words):
    with pytest.raises(ValidationError) as caught:
        parse(data) if data != [] else Policy.from_json(data, default_min_age_hours=72)
    assert words in caught.value.message and "\n" not in caught.value.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=True)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12)
policy_like = st.fixed_dictionaries({}, optional={
    "min_age_hours": json_values, "hold_local": json_values, "frozen_at": json_values,
    "allow": st.lists(st.text(max_size=30), max_size=4) | json_values,
    "deny": st.lists(st.text(max_size=30), max_size=4) | json_values,
    "deny_licenses": st.lists(st.sampled_from(["MIT", "GPL-3.0-only", "x y", "MIT+"])
                              | st.text(max_size=20), max_size=3) | json_values,
    "deny_classifiers": json_values, "license_unknown": json_values})


@settings(max_examples=300, deadline=None)
@given(st.one_of(policy_like, json_values))
def test_from_json_raises_nothing_but_validation_errors(data):
    try:
        p = Policy.from_json(data, default_min_age_hours=72)
    except ValidationError as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert Policy.from_json(p.to_json(), default_min_age_hours=72) == p
    evaluate("v", p, upstream(age=timedelta(hours=1)), NOW)


# --- checks --------------------------------------------------------------------------------

def test_the_cooldown_hides_young_upstream_files_with_the_reason_the_design_gives():
    young = upstream(age=timedelta(days=2), version="2.0")
    block = evaluate("default", parse(), young, NOW)
    assert block.kind == "cooldown"
    assert block.reason == ("Blocked by policy 'default': released 2026-12-01, younger than "
                            "the 3-day cooldown")
    assert block.until == NOW + timedelta(days=1)
    assert evaluate("default", parse(), upstream(age=timedelta(days=3)), NOW) is None


def test_a_cooldown_in_hours_says_hours_and_zero_turns_it_off():
    block = evaluate("ci", parse({"min_age_hours": 36}), upstream(age=timedelta(hours=1)), NOW)
    assert block.reason.endswith("younger than the 36-hour cooldown")
    assert evaluate("ci", parse({"min_age_hours": 0}), upstream(age=timedelta(0)), NOW) is None
    assert evaluate("ci", parse({}, default=0), upstream(age=timedelta(0)), NOW) is None


def test_files_without_an_upload_time_are_aged_from_first_seen():
    block = evaluate("default", parse(), upstream(age=timedelta(hours=1), estimated=True), NOW)
    assert "first seen 2026-12-03, younger than the 3-day cooldown" in block.reason


def test_local_files_are_held_only_when_the_view_says_so():
    local = upstream(age=timedelta(hours=1), local=True)
    assert evaluate("default", parse(), local, NOW) is None
    assert evaluate("default", parse({"hold_local": True}), local, NOW).kind == "cooldown"


def test_an_exemption_lifts_the_cooldown_for_its_project_or_version_until_it_expires():
    young = upstream("fixme", "2.0", age=timedelta(hours=1))
    later = NOW + timedelta(days=1)
    for exempt in (Exempt("FixMe", None, "CVE fix", later), Exempt("fixme", "2.0", "CVE", later)):
        assert evaluate("default", parse(), young, NOW, [exempt]) is None
    for exempt in (Exempt("fixme", "1.9", "other", later), Exempt("other", None, "x", later),
                   Exempt("fixme", None, "lapsed", NOW)):
        assert evaluate("default", parse(), young, NOW, [exempt]).kind == "cooldown"


def test_an_exemption_does_not_lift_a_freeze():
    frozen = parse({"frozen_at": "2026-11-01T00:00:00Z"})
    young = upstream("fixme", "2.0", age=timedelta(hours=1))
    block = evaluate("repro", frozen, young, NOW, [Exempt("fixme", None, "r", NOW + timedelta(1))])
    assert block.reason == ("Blocked by policy 'repro': uploaded after the view's freeze at "
                            "2026-11-01 00:00 UTC")
    assert evaluate("repro", frozen, upstream(age=timedelta(days=60)), NOW) is None


def test_the_freeze_applies_to_local_files_too():
    frozen = parse({"frozen_at": "2026-11-01T00:00:00Z", "min_age_hours": 0})
    assert evaluate("r", frozen, upstream(age=timedelta(days=1), local=True), NOW).kind == "freeze"


def test_allow_list_by_name_pattern_and_specifier():
    p = parse({"allow": ["acme-*", "requests", "django>=5,<6"], "min_age_hours": 0})
    assert evaluate("ci", p, upstream("Acme.Util"), NOW) is None
    assert evaluate("ci", p, upstream("requests", "2.32.0"), NOW) is None
    assert evaluate("ci", p, upstream("django", "5.1"), NOW) is None
    assert evaluate("ci", p, upstream("evil"), NOW).reason == (
        "Blocked by policy 'ci': 'evil' is not on the view's allow list")
    assert evaluate("ci", p, upstream("django", "4.2"), NOW).reason == (
        "Blocked by policy 'ci': 'django 4.2' is not on the view's allow list")


def test_deny_rules_name_the_rule_and_fail_closed_on_odd_versions():
    p = parse({"deny": ["evil-*", "urllib3<2"], "min_age_hours": 0})
    assert evaluate("ci", p, upstream("urllib3", "1.26.0"), NOW).reason == (
        "Blocked by policy 'ci': 'urllib3 1.26.0' matches the deny rule 'urllib3<2'")
    assert evaluate("ci", p, upstream("urllib3", "2.2.0"), NOW) is None
    assert evaluate("ci", p, upstream("urllib3", "not-a-version"), NOW).kind == "deny"
    assert evaluate("ci", p, upstream("evil_thing"), NOW).kind == "deny"


def test_checks_run_in_order_allow_deny_license_freeze_cooldown():
    p = parse({"allow": ["ok-*"], "deny": ["ok-bad"], "deny_licenses": ["GPL-3.0-only"],
               "frozen_at": "2026-12-01T00:00:00Z"})
    young = dict(age=timedelta(hours=1))
    assert evaluate("v", p, upstream("no", **young), NOW).kind == "allow"
    assert evaluate("v", p, upstream("ok-bad", **young), NOW).kind == "deny"
    assert evaluate("v", p, upstream("ok-x", license_expression="GPL-3.0-only", **young),
                    NOW).kind == "license"
    assert evaluate("v", p, upstream("ok-x", **young), NOW).kind == "freeze"
    assert [c.__name__ for c in pol.CHECKS] == ["check_malicious", "check_scanned",
                                                "check_pinned", "check_allow", "check_deny",
                                                "check_license", "check_freeze",
                                                "check_cooldown", "check_vulnerable",
                                                "check_provenance"]


@pytest.mark.parametrize("expression, denied", [
    ("GPL-3.0-only", True), ("gpl-3.0-only", True), ("MIT", False),
    ("MIT OR GPL-3.0-only", False), ("MIT AND GPL-3.0-only", True),
    ("(MIT OR Apache-2.0) AND GPL-3.0-only", True), ("GPL-3.0-only WITH GCC-exception-3.1", True),
    ("(GPL-3.0-only OR AGPL-3.0-or-later)", True), ("Apache-2.0 WITH LLVM-exception", False),
])
def test_license_expressions_are_denied_only_when_no_choice_avoids_a_denied_license(
        expression, denied):
    p = parse({"deny_licenses": ["GPL-3.0-only", "AGPL-3.0-or-later"], "min_age_hours": 0})
    block = evaluate("v", p, upstream(license_expression=expression), NOW)
    assert (block is not None) == denied
    if denied:
        assert block.reason == f"Blocked by policy 'v': license '{expression}' is denied"


def test_denied_classifiers_and_unknown_licenses():
    agpl = "License :: OSI Approved :: GNU Affero General Public License v3"
    p = parse({"deny_classifiers": [agpl], "min_age_hours": 0})
    assert evaluate("v", p, upstream(classifiers=(agpl,)), NOW).reason == (
        f"Blocked by policy 'v': license '{agpl}' is denied")
    assert evaluate("v", p, upstream(classifiers=("Programming Language :: Python",)), NOW) is None
    assert evaluate("v", p, upstream(), NOW) is None  # unknown, allowed by default
    strict = parse({"deny_classifiers": [agpl], "license_unknown": "deny", "min_age_hours": 0})
    assert "not known (yet)" in evaluate("v", strict, upstream(), NOW).reason
    assert evaluate("v", strict, upstream(license_expression="MIT"), NOW) is None
    assert "cannot be read" in evaluate(
        "v", parse({"deny_licenses": ["MIT"], "license_unknown": "deny"}),
        upstream(license_expression="MIT AND (", age=timedelta(days=9)), NOW).reason


def test_visible_from_and_next_change():
    p = parse()
    young = upstream(age=timedelta(days=1))
    assert visible_from("default", p, young, NOW) == NOW + timedelta(days=2)
    assert visible_from("default", p, upstream(), NOW) is None
    assert visible_from("ci", parse({"deny": ["demo"]}), young, NOW) is None
    lapse = NOW + timedelta(hours=5)
    exempt = [Exempt("demo", None, "fix", lapse)]
    assert visible_from("default", p, young, NOW, exempt) is None
    assert next_change("default", p, young, NOW, exempt) == lapse
    assert next_change("default", p, young, NOW) == NOW + timedelta(days=2)
    assert next_change("default", p, upstream(), NOW) is None
    long_exempt = [Exempt("demo", None, "fix", NOW + timedelta(days=5))]
    assert next_change("default", p, young, NOW, long_exempt) is None


def test_reasons_fit_an_http_reason_phrase():
    p = parse({"deny_licenses": ["MIT"]})
    block = evaluate("v", p, upstream(license_expression="MIT AND " * 40 + "MIT"), NOW)
    assert block.reason.isascii() and len(block.reason) < 200


def test_odd_characters_from_upstream_metadata_do_not_reach_the_reason_phrase():
    p = parse({"deny_licenses": ["MIT"], "min_age_hours": 0, "license_unknown": "deny"})
    block = evaluate("v", p, upstream(license_expression="MIT\r\nX-Evil: 1 AND M\u00efT"), NOW)
    assert block is not None and block.reason.isascii() and "\n" not in block.reason


def test_lookalikes_is_block_by_default_and_only_block_or_allow():
    assert parse({}).lookalikes == "block"
    assert parse({"lookalikes": "allow"}).to_json()["lookalikes"] == "allow"
    with pytest.raises(ValidationError, match="'lookalikes' must be 'block' or 'allow'"):
        parse({"lookalikes": "maybe"})
def test_a_malicious_release_is_hidden_by_every_view_first():
    bad = upstream("evil", advisories=(("MAL-2026-1", None, True),))
    block = evaluate("v", parse({"deny": ["evil"]}), bad, NOW)
    assert block.kind == pol.MALICIOUS
    assert block.reason == "Blocked by policy 'v': 'evil 1.0' is a known malicious package " \
                           "(MAL-2026-1)"


def test_known_vulnerabilities_hide_a_release_at_or_above_the_views_level():
    known = upstream(advisories=(("PYSEC-1", "moderate", False), ("PYSEC-2", None, False)))
    assert evaluate("v", parse({}), known, NOW) is None
    assert evaluate("v", parse({"hide_vulnerable": "high"}), known, NOW) is None
    block = evaluate("v", parse({"hide_vulnerable": "moderate"}), known, NOW)
    assert block.kind == pol.VULNERABLE and block.reason == (
        "Blocked by policy 'v': 'demo 1.0' has known vulnerabilities of severity moderate or "
        "higher (PYSEC-1)")
    assert parse({"hide_vulnerable": "low"}).to_json()["hide_vulnerable"] == "low"
    with pytest.raises(ValidationError, match="'hide_vulnerable' must be one of"):
        parse({"hide_vulnerable": "severe"})


def test_a_scanned_verdict_is_hidden_by_the_hide_scanned_setting():
    malicious = Candidate(project="p", version="1.0", filename="p-1.0.tar.gz",
                          scan_verdict="malicious")
    suspicious = Candidate(project="p", version="1.0", filename="p-1.0.tar.gz",
                           scan_verdict="suspicious")
    unscanned = Candidate(project="p", version="1.0", filename="p-1.0.tar.gz")
    default = parse({"min_age_hours": 0})
    assert default.hide_scanned == "malicious"
    block = evaluate("v", default, malicious, NOW)
    assert block.kind == "scanned" and "judged p-1.0.tar.gz malicious" in block.reason
    assert evaluate("v", default, suspicious, NOW) is None
    assert evaluate("v", default, unscanned, NOW) is None
    strict = parse({"min_age_hours": 0, "hide_scanned": "suspicious"})
    assert evaluate("v", strict, suspicious, NOW).kind == "scanned"
    assert evaluate("v", parse({"min_age_hours": 0, "hide_scanned": "none"}), malicious,
                    NOW) is None
    with pytest.raises(ValidationError, match="'hide_scanned' must be one of"):
        parse({"hide_scanned": "all"})


def test_only_verdicts_a_policy_can_hide_on_may_change_a_page():
    for verdict in ("malicious", "suspicious"):
        assert pol.verdict_may_hide(verdict)
    for verdict in (None, "", "clean", "error"):
        assert not pol.verdict_may_hide(verdict)
    # Whatever a policy hides on is covered: no setting hides a verdict verdict_may_hide denies.
    for setting in pol.HIDE_SCANNED_CHOICES:
        for verdict in ("", "clean", "error"):
            candidate = Candidate(project="p", version="1.0", filename="p-1.0.tar.gz",
                                  scan_verdict=verdict or None)
            assert evaluate("v", parse({"min_age_hours": 0, "hide_scanned": setting}),
                            candidate, NOW) is None


# --- PEP 740 provenance and pinned publishers ------------------------------------------------

REPO = "https://github.com/acme/demo"


def test_provenance_keys_parse_and_refuse_bad_values():
    p = parse({"require_provenance": True, "pin_publishers": "tofu"}, default=0)
    assert p.require_provenance and p.pin_publishers == "tofu" and p.needs_provenance
    assert parse(p.to_json(), default=0) == p
    with pytest.raises(ValidationError, match="'require_provenance' must be true or false"):
        parse({"require_provenance": "yes"})
    with pytest.raises(ValidationError, match="'pin_publishers' must be 'off' or 'tofu'"):
        parse({"pin_publishers": "always"})


def test_a_view_requiring_provenance_hides_upstream_files_without_it_only():
    p = parse({"require_provenance": True}, default=0)
    block = evaluate("v", p, upstream("demo"), NOW)
    assert block.kind == pol.PROVENANCE
    assert block.reason == ("Blocked by policy 'v': demo-1.0.tar.gz has no verified provenance "
                            "(PEP 740 attestation) and the view requires one")
    assert evaluate("v", p, upstream("demo", provenance_identity=REPO), NOW) is None
    local = Candidate(project="demo", version="1.0", filename="demo-1.0.tar.gz", local=True,
                      uploaded=NOW - timedelta(days=9))
    assert evaluate("v", p, local, NOW) is None


def test_a_file_attested_by_another_publisher_than_the_pin_is_hidden_whatever_else():
    p = parse({"allow": ["other"]}, default=0)
    block = evaluate("v", p, upstream("demo", provenance_identity="https://github.com/evil/demo",
                                      pinned_identity=REPO), NOW)
    assert block.kind == pol.PINNED  # before the allow list: it is the attack itself
    assert "attested by https://github.com/evil/demo, not by the publisher pinned for " \
           "'demo' (https://github.com/acme/demo)" in block.reason
    same = upstream("demo", provenance_identity="HTTPS://github.com/Acme/demo.git/",
                    pinned_identity=REPO)
    assert evaluate("v", parse({}, default=0), same, NOW) is None
    # A pin alone does not hide files with no provenance: require_provenance does that.
    assert evaluate("v", parse({}, default=0), upstream("demo", pinned_identity=REPO), NOW) is None


@pytest.mark.parametrize("text, expected", [
    ("Demo_Pkg=https://github.com/Acme/Demo/", ("demo-pkg", "https://github.com/acme/demo")),
    ("gcb = 1-compute@developer.gserviceaccount.com",
     ("gcb", "1-compute@developer.gserviceaccount.com")),
])
def test_pins_are_parsed_and_normalized(text, expected):
    assert pol.parse_pin(text) == expected


@pytest.mark.parametrize("text", ["demo", "=https://github.com/a/b", "demo=", "demo=github.com/a/b",
                                  "demo=http://github.com/a/b", "de mo=https://github.com/a/b",
                                  "demo=https://github.com/a/" + "b" * 600])
def test_bad_pins_are_refused_in_one_line(text):
    with pytest.raises(ValidationError) as refused:
        pol.parse_pin(text)
    assert "\n" not in refused.value.message
