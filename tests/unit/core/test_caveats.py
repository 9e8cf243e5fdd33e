"""Token caveats: wire format and checks (pure, no database)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name, canonicalize_version

from bastion.core import caveats
from bastion.core.caveats import CaveatError, Context, check

NOW = 1_700_000_000


def ctx(**overrides) -> Context:
    values = {"now": NOW, "user_id": 7, "permission": "upload", "project": "demo", "version": "1.0"}
    values.update(overrides)
    return Context(**values)


def reason(predicate, context: Context) -> str:
    with pytest.raises(CaveatError) as excinfo:
        check(predicate, context)
    return str(excinfo.value)


# --- wire format -----------------------------------------------------------------------

def test_caveats_serialize_as_compact_json_arrays():
    assert caveats.expiry(NOW + 60, NOW) == f'["exp",{NOW + 60},{NOW}]'
    assert caveats.user(7) == '["user",7]'
    assert caveats.permission("read") == '["perm","read"]'
    assert caveats.version("1.0.0") == '["version","1"]'


def test_project_caveat_holds_sorted_unique_normalized_names():
    assert json.loads(caveats.projects(["Foo_Bar", "foo.bar", "Alpha"])) == ["projects", ["alpha", "foo-bar"]]


def test_unknown_permission_cannot_be_issued():
    with pytest.raises(ValueError):
        caveats.permission("admin")


def test_bytes_predicates_are_read_like_text():
    check(caveats.user(7).encode(), ctx())
    assert reason(caveats.user(8).encode(), ctx()) == "token belongs to another user"


# --- expiry ----------------------------------------------------------------------------

def test_expiry_allows_the_window_and_refuses_after_it():
    predicate = caveats.expiry(NOW + 10, NOW - 10)
    check(predicate, ctx())
    check(predicate, ctx(now=NOW - 10))  # not_before is inclusive
    assert reason(predicate, ctx(now=NOW + 10)) == "token has expired"  # not_after is exclusive
    assert reason(predicate, ctx(now=NOW - 11)) == "token is not valid yet"


def test_expiry_without_not_before_is_valid_from_the_epoch():
    check('["exp",%d]' % (NOW + 1), ctx())
    check('["exp",%d]' % (NOW + 1), ctx(now=0))
    assert reason('["exp",%d]' % NOW, ctx()) == "token has expired"


@pytest.mark.parametrize("predicate", ['["exp"]', '["exp","soon"]', '["exp",1.5]', '["exp",true]',
                                       '["exp",10,"x"]', '["exp",1e400]'])
def test_malformed_expiry_fails_closed(predicate):
    assert "malformed" in reason(predicate, ctx())


# --- projects, user, permission, version -----------------------------------------------

def test_project_caveat_matches_normalized_names():
    predicate = caveats.projects(["Demo"])
    check(predicate, ctx(project="demo"))
    check(predicate, ctx(project="DEMO"))
    assert "not valid for project" in reason(predicate, ctx(project="other"))


def test_project_caveat_refuses_index_wide_reads():
    assert "specific projects" in reason(caveats.projects(["demo"]), ctx(permission="read", project=None))


def test_empty_project_list_allows_nothing():
    assert "not valid for project" in reason('["projects",[]]', ctx())


def test_user_caveat_binds_the_token_to_its_owner():
    check(caveats.user(7), ctx())
    assert reason(caveats.user(8), ctx()) == "token belongs to another user"
    assert reason('["user","7"]', ctx()) == "token belongs to another user"


def test_read_permission_forbids_uploads_only():
    check(caveats.permission("read"), ctx(permission="read"))
    check(caveats.permission("upload"), ctx(permission="upload"))
    assert reason(caveats.permission("read"), ctx(permission="upload")) == "token is read-only"


def test_unknown_permission_value_fails_closed():
    assert "malformed" in reason('["perm","everything"]', ctx(permission="read"))


def test_version_caveat_limits_uploads_not_reads():
    predicate = caveats.version("1.0")
    check(predicate, ctx(version="1.0.0"))
    check(predicate, ctx(permission="read", version=None))
    assert "version 1" in reason(predicate, ctx(version="2.0"))
    assert "version 1" in reason(predicate, ctx(version=None))


def test_fields_appended_by_newer_versions_are_ignored():
    check('["user",7,"a-future-field"]', ctx())
    assert reason('["user",8,"a-future-field"]', ctx()) == "token belongs to another user"


# --- failing closed --------------------------------------------------------------------

@pytest.mark.parametrize("predicate", ["", "not json", "[]", "{}", '"exp"', "[1,2]", "null",
                                       b"\xff\xfe", '["projects","demo"]', '["user"]'])
def test_malformed_caveats_fail_closed(predicate):
    assert "malformed" in reason(predicate, ctx())


def test_unknown_caveat_tag_fails_closed():
    assert reason('["frobnicate",1]', ctx()) == "unknown caveat 'frobnicate'"


# --- any predicate, against the rules in the module's docstring -------------------------

def allows(predicate, context: Context) -> bool:
    """What check() decides; any exception but CaveatError fails the test."""
    try:
        check(predicate, context)
    except CaveatError:
        return False
    return True


def rules_allow(predicate, context: Context) -> bool:
    """The caveat rules restated from the module's docstring, as the oracle for check()."""
    try:
        value = json.loads(predicate.decode("utf-8") if isinstance(predicate, bytes) else predicate)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(value, list) or not value or len(value) < 2:
        return False
    tag, first, *rest = value

    def integer(x) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if tag == "exp":
        not_before = rest[0] if rest else 0
        return integer(first) and integer(not_before) and not_before <= context.now < first
    if tag == "projects":
        return (isinstance(first, list) and all(isinstance(n, str) for n in first)
                and context.project is not None
                and canonicalize_name(context.project) in {canonicalize_name(n) for n in first})
    if tag == "user":
        return integer(first) and first == context.user_id
    if tag == "perm":
        return first in ("read", "upload") and (first == "upload" or context.permission == "read")
    if tag == "version":
        return isinstance(first, str) and (
            context.permission != "upload"
            or (context.version is not None and canonicalize_version(context.version) == first))
    return False


contexts = st.builds(
    Context, now=st.sampled_from([NOW, NOW - 1, NOW + 1, 0]), user_id=st.sampled_from([7, 8]),
    permission=st.sampled_from(["read", "upload"]),
    project=st.sampled_from([None, "demo", "Demo", "other"]),
    version=st.sampled_from([None, "1.0", "1.0.0", "2"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=20)
# Fields a caveat might really carry, so that both answers come up often.
odd_fields = st.sampled_from([0, True, 1.5, "write", "", None, [7], {"a": 1}])
fitting_fields = {
    "exp": st.sampled_from([NOW + 3600, NOW + 1, NOW, NOW - 1, 0]),
    "projects": st.lists(st.sampled_from(["demo", "DEMO", "other", 7]), max_size=3),
    "user": st.sampled_from([7, 8]),
    "perm": st.sampled_from(["read", "upload"]),
    "version": st.sampled_from(["1", "2", "1.0"]),
    "other": st.just(1),
}
caveat_shaped = st.sampled_from(sorted(fitting_fields)).flatmap(
    lambda tag: st.lists(fitting_fields[tag] | odd_fields, max_size=3).map(
        lambda fields: json.dumps([tag, *fields])))


@given(st.text(max_size=200) | st.binary(max_size=200), contexts)
def test_arbitrary_predicates_are_judged_by_the_caveat_rules(predicate, context):
    assert allows(predicate, context) == rules_allow(predicate, context)


@given(json_values.map(json.dumps), contexts)
def test_arbitrary_json_is_judged_by_the_caveat_rules(predicate, context):
    assert allows(predicate, context) == rules_allow(predicate, context)


@settings(max_examples=500)
@given(caveat_shaped, contexts)
def test_caveat_shaped_predicates_are_judged_by_the_caveat_rules(predicate, context):
    assert allows(predicate, context) == rules_allow(predicate, context)


def test_deeply_nested_json_fails_closed_with_caveat_error():
    assert "malformed" in reason("[" * 5000, ctx())


def test_boolean_is_not_a_user_id():
    assert reason('["user",true]', ctx(user_id=1)) == "token belongs to another user"


def test_project_scope_intersects_project_caveats_and_normalizes_names():
    from bastion.core.caveats import project_scope

    assert project_scope(['["user",1]']) is None
    assert project_scope(['["projects",["A_b","c"]]', '["projects",["a-b"]]']) == {"a-b"}
    assert project_scope(["not json", '["projects","x"]']) is None
