"""The project description: rendered to safe HTML as PyPI renders it (readme_renderer), or
refused when it does not render."""

from __future__ import annotations

import email.message
import io
import re
from dataclasses import dataclass

from .errors import ValidationError
from .text import first_line, remembered_when_short


@dataclass(frozen=True)
class RenderedDescription:
    """A description rendered before, e.g. by the first file of the release being added to.

    The rest of a release's files nearly always carry the same description; rendering it
    again (with syntax highlighting, a good part of an upload's work) would only repeat a success.
    """

    description: str
    content_type: str
    html: str


def render_description(description: str | None, content_type: str | None) -> str:
    """Safe HTML for the description, rendered as PyPI does; a description that does not
    render is refused, as on PyPI, so what users see is what the author meant."""
    if not description or not description.strip():
        return ""
    return _render_any_description(description, content_type)


# Rendering (with syntax highlighting) is a good part of an upload's work, and a project's
# releases often carry the same description.
@remembered_when_short(32 * 1024, maxsize=64)
def _render_any_description(description: str, content_type: str | None) -> str:
    # Imported by the first rendering, not with the module: readme_renderer brings docutils,
    # Pygments and a Markdown parser, a large share of a server process's memory, and only
    # uploads render descriptions.
    import readme_renderer.markdown
    import readme_renderer.rst
    import readme_renderer.txt

    kind, variant = _content_type(content_type)
    warnings = io.StringIO()
    try:
        if kind == "text/plain":
            rendered = readme_renderer.txt.render(description)
            rendered = f"<pre>{rendered}</pre>" if rendered is not None else None
        elif kind == "text/markdown":
            rendered = readme_renderer.markdown.render(description, variant=variant)
        else:
            rendered = readme_renderer.rst.render(description, stream=warnings)
    except Exception:  # a renderer crashing on odd input is a failure to render, not a 500
        rendered = None
    if rendered is not None:
        return rendered
    if content_type:
        message = f"The description failed to render for '{kind}'"
    else:
        message = "The description failed to render in the default format of reStructuredText"
    detail = first_line(warnings.getvalue())
    if detail and kind not in ("text/plain", "text/markdown"):
        message += f": {detail}"
    raise ValidationError(message.rstrip(".") + ".")


@remembered_when_short(256, maxsize=64)  # a handful of values in practice
def _content_type(content_type: str | None) -> tuple[str, str]:
    if not content_type:
        return "text/x-rst", "GFM"
    message = email.message.EmailMessage()
    try:
        message["content-type"] = content_type
        kind = message.get_content_type()
        variant = message.get_param("variant") or "GFM"
    except Exception:  # already validated by packaging; be safe anyway
        return "text/x-rst", "GFM"
    return kind, variant if isinstance(variant, str) else "GFM"


# readme_renderer's output as stored, made fit for every reader when shown. Headings carry an
# empty self-link (GitHub's hover anchor) that a screen reader announces as a nameless link,
# and highlighted blocks name their programming language in ``lang``, which is for human
# languages. Applied when the page is shown, so descriptions stored earlier are fixed too;
# the patterns match only the renderer's own, already sanitised, markup.
_EMPTY_ANCHOR = re.compile(r'<a href="#([^"<>&]{1,200})" rel="nofollow"></a>')
_PRE_LANG = re.compile(r'<pre lang="([A-Za-z0-9_+.#-]{1,40})">')
# A block of code wider than the page scrolls; keyboard users must be able to scroll it too.
_PRE = re.compile(r'<pre(?=[ >])')


def for_display(html: str) -> str:
    html = _EMPTY_ANCHOR.sub(
        r'<a href="#\1" rel="nofollow" class="anchor" aria-label="Link to this section">#</a>', html)
    html = _PRE_LANG.sub(r'<pre data-lang="\1">', html)
    return _PRE.sub('<pre tabindex="0"', html)
