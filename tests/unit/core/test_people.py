"""Authors and maintainers read from core metadata into names and linkable addresses."""

from hypothesis import given
from hypothesis import strategies as st

from bastion.core.people import Person, people, plain_address


def test_a_pep_621_author_is_a_name_with_an_address_not_a_raw_header():
    assert people("", "Alice Admin <alice@example.com>") == [
        Person("Alice Admin", "alice@example.com")]


def test_several_pep_621_authors_with_quoted_commas():
    assert people("", '"Admin, Alice" <a@example.org>, Bob <b@example.org>') == [
        Person("Admin, Alice", "a@example.org"), Person("Bob", "b@example.org")]


def test_authors_without_an_address_come_from_the_author_field():
    # authors = [{name="Alice", email=...}, {name="Carol"}]
    assert people("Carol", "Alice <a@example.org>") == [
        Person("Alice", "a@example.org"), Person("Carol")]


def test_the_older_form_pairs_the_name_with_the_bare_address():
    assert people("Alice", "alice@example.com") == [Person("Alice", "alice@example.com")]


def test_a_name_listed_in_both_fields_is_shown_once():
    assert people("Alice, Bob", "Alice <a@example.org>, Bob <b@example.org>") == [
        Person("Alice", "a@example.org"), Person("Bob", "b@example.org")]


def test_a_name_with_a_comma_and_no_address_stays_whole():
    assert people("Smith, John", "") == [Person("Smith, John")]


def test_encoded_words_are_decoded():
    assert people("", "=?utf-8?q?Zo=C3=AB?= <z@example.org>") == [Person("Zoë", "z@example.org")]


def test_what_does_not_parse_is_text_without_a_link():
    assert people("", "a@example.org?cc=evil@example.net") == [
        Person("a@example.org?cc=evil@example.net")]
    assert people("", "Alice") == [Person("Alice")]
    assert people("", "a@example.org, junk <<") == [Person("a@example.org, junk <<")]


def test_addresses_that_a_mailto_link_would_misread_are_not_plain():
    for address in ("a@b.org?cc=c@d.org", "a%40b@c.org", "a@b..org", "a b@c.org", "<a@b.org>",
                    "a@b.org&body=x", "a@"):
        assert not plain_address(address)
    assert plain_address("first.last+tag@sub.example.org")


def test_nothing_at_all():
    assert people(None, None) == []
    assert people("", "  ") == []


@given(st.text(max_size=300), st.text(max_size=300))
def test_any_input_gives_people_whose_links_are_plain(names, emails):
    for person in people(names, emails):
        assert person.label
        assert not person.email or plain_address(person.email)
        assert "\n" not in person.name and "\r" not in person.name
