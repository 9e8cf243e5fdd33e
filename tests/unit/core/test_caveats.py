"""Token caveats: wire format and checks (pure, no database)."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# --- expiry ----------------------------------------------------------------------------

def test_expiry_allows_the_window_and_refuses_after_it():
    predicate = caveats.expiry(NOW + 10, NOW - 10)
    check(predicate, ctx())
    check(predicate, ctx(now=NOW - 10))  # not_before is inclusive
    assert reason(predicate, ctx(now=NOW + 10)) == "token has expired"  # not_after is exclusive
    assert reason(predicate, ctx(now=NOW - 11)) == "token is not valid yet"


def test_expiry_without_not_before_is_valid_from_the_epoch():
    check('["exp",%d]' % (NOW + 1), ctx())


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


# --- failing closed --------------------------------------------------------------------

@pytest.mark.parametrize("predicate", ["", "not json", "[]", "{}", '"exp"', "[1,2]", "null",
                                       b"\xff\xfe", '["projects","demo"]', '["user"]'])
def test_malformed_caveats_fail_closed(predicate):
    assert "malformed" in reason(predicate, ctx())


def test_unknown_caveat_tag_fails_closed():
    assert reason('["frobnicate",1]', ctx()) == "unknown caveat 'frobnicate'"


@given(st.text(max_size=200) | st.binary(max_size=200))
def test_arbitrary_predicates_raise_only_caveat_error(predicate):
    try:
        check(predicate, ctx())
    except CaveatError:
        pass


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=20)
       .map(lambda value: json.dumps(value)))
def test_arbitrary_json_raises_only_caveat_error(predicate):
    try:
        check(predicate, ctx())
    except CaveatError:
        pass


def test_deeply_nested_json_fails_closed_with_caveat_error():
    assert "malformed" in reason("[" * 5000, ctx())


def test_boolean_is_not_a_user_id():
    reason('["user",true]', ctx(user_id=1))


def test_project_scope_intersects_project_caveats_and_normalizes_names():
    from bastion.core.caveats import project_scope

    assert project_scope(['["user",1]']) is None
    assert project_scope(['["projects",["A_b","c"]]', '["projects",["a-b"]]']) == {"a-b"}
    assert project_scope(["not json", '["projects","x"]']) is None
