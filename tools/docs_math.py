"""MkDocs hook: the docs' LaTeX as MathML, rendered on the server, so pages need no script.

``pymdownx.arithmatex`` (``generic: true``) marks ``$...$`` and ``$$...$$`` in Markdown (and in
the docstrings mkdocstrings renders) as ``<span class="arithmatex">\\(...\\)</span>`` and
``<div class="arithmatex">\\[...\\]</div>``; this hook replaces each with the MathML that
``latex2mathml`` writes. Browsers render MathML natively (Chromium 109+, Firefox, Safari), so
the built site shows its formulas offline, with no MathJax or KaTeX fetched from a CDN. A
formula that ``latex2mathml`` cannot read is logged as a warning, which fails
``mkdocs build --strict``.
"""

import html
import logging
import re

from latex2mathml.converter import convert

log = logging.getLogger("mkdocs.plugins.docs_math")

_MATH = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*(?:\\\((?P<inline>.*?)\\\)|\\\[(?P<block>.*?)\\\])'
    r"\s*</(?P=tag)>",
    re.DOTALL,
)


def to_mathml(latex, display, where="?"):
    """``latex`` as a ``<math>`` element (``display``: "inline" or "block")."""
    try:
        return convert(latex.strip(), display=display)
    except Exception as error:  # latex2mathml raises several kinds; any one is a broken formula
        log.warning("%s: cannot convert the formula %r to MathML: %s", where, latex, error)
        return f"<code>{html.escape(latex)}</code>"


def on_page_content(html_text, page, **kwargs):
    where = page.file.src_uri

    def replace(match):
        if match["block"] is not None:
            mathml = to_mathml(html.unescape(match["block"]), "block", where)
            return f'<div class="math-block">{mathml}</div>'
        return to_mathml(html.unescape(match["inline"]), "inline", where)

    return _MATH.sub(replace, html_text)
