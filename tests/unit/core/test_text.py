from bastion.core.text import first_line, one_line, remembered_when_short


def test_one_line_drops_control_characters_and_cuts_to_the_limit():
    assert one_line("  a\x00b\x1bc\x85  ", 10) == "abc"
    assert one_line("abcdef", 3) == "abc"
    assert one_line(None, 10) == ""


def test_first_line_is_the_first_non_blank_line_with_whitespace_collapsed():
    assert first_line("\n  \n  two   words \nthree") == "two words"
    assert first_line("   ") == ""


def test_only_short_texts_are_remembered():
    calls = []

    @remembered_when_short(8, maxsize=4)
    def length(text, extra=""):
        calls.append(text)
        return len(text) + len(extra)

    assert [length("short"), length("short"), length("a" * 9), length("a" * 9)] == [5, 5, 9, 9]
    assert calls == ["short", "a" * 9, "a" * 9]  # a long text is never kept as a key
    assert length.cache_info().currsize == 1
