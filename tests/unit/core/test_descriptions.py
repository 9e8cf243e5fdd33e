
import pytest

from bastion.core.descriptions import render_description
from bastion.core.errors import ValidationError


def refusal(description: str, content_type: str) -> str:
    with pytest.raises(ValidationError) as caught:
        render_description(description, content_type)
    assert caught.value.status == 400 and "\n" not in caught.value.message
    return caught.value.message


def test_broken_default_rst_description_is_refused():
    message = refusal("Title\n=====\n\n.. broken::\n", "")
    assert message.startswith(
        "The description failed to render in the default format of reStructuredText")


def test_broken_explicit_rst_description_is_refused():
    message = refusal("`unclosed\n", "text/x-rst")
    assert message.startswith("The description failed to render for 'text/x-rst'")


def test_valid_rst_description_is_rendered():
    assert "<em>text</em>" in render_description("Title\n=====\n\nSome *text*.\n", "")


def test_markdown_description_is_rendered():
    assert "<strong>world</strong>" in render_description("Hello **world**.\n", "text/markdown")


def test_plain_text_description_is_escaped_and_preformatted():
    html = render_description("a < b\n", "text/plain")
    assert html.startswith("<pre>") and "a &lt; b" in html


def test_rendered_description_is_sanitised():
    html = render_description("hi <script>alert(1)</script> <b>ok</b>\n", "text/markdown")
    assert "<script" not in html


@pytest.mark.parametrize("description", [None, "", "  \n"])
def test_empty_description_renders_to_nothing(description):
    assert render_description(description, "text/markdown") == ""


def test_a_description_that_does_not_render_is_refused_every_time():
    # Renderings of short texts are remembered; a refusal must not be.
    for _ in range(2):
        refusal("`unclosed\n", "text/x-rst")


def test_shown_descriptions_name_their_heading_links_and_keep_lang_for_human_languages():
    from bastion.core.descriptions import for_display

    html = for_display(render_description("# Demo\n\n```python\nx = 1\n```\n", "text/markdown"))
    assert 'aria-label="Link to this section">#</a>' in html
    assert 'rel="nofollow"></a>' not in html
    assert ' lang="python"' not in html and '<pre tabindex="0" data-lang="python">' in html


def test_display_fixes_touch_only_the_renderers_own_markup():
    from bastion.core.descriptions import for_display

    odd = '<a href="#x" rel="nofollow" onclick="y"></a><pre lang="en onload=x">'
    assert for_display(odd) == odd.replace('<pre ', '<pre tabindex="0" ')
