import pytest

from bastion.core.spreadsheet import safe_cell


@pytest.mark.parametrize("text", ["=1+1", "+1", "-2", "@SUM(A1)", "\t=1", "\r=1",
                                  "=HYPERLINK(\"http://x\")"])
def test_a_cell_that_starts_like_a_formula_is_made_plain_text(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value, expected", [("alice", "alice"), ("", ""), (None, ""), (12, "12"),
                                             ("a=b", "a=b"), ("'=x", "'=x")])
def test_other_cells_are_left_as_they_are(value, expected):
    assert safe_cell(value) == expected
