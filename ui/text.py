"""Untrusted text on a page: one escape for every user-supplied string shown through Markdown.

``st.markdown``, ``st.caption``, ``st.subheader``, ``st.success`` / ``st.error`` /
``st.warning`` / ``st.info`` all render Markdown. A file, column or npz member name such
as ``![b](http://127.0.0.1:8999/x.png)`` would make every browser that shows it fetch
that address; ``[text](url)`` would be a link, ``:red[...]``, ``$x$`` and ``**`` would
restyle the page. :func:`md` makes a string show as the characters it holds. Every
string that came from a file or a person (names, labels, typed values, and the messages
of vqcore that quote them) goes through it before it is embedded in Markdown; text the
app writes itself keeps its formatting.

Plotly charts draw their text and hover labels from a subset of HTML (``<b>``, ``<br>``,
``<a href>``, entities): :func:`plotly_text` makes a label show as its characters there.
"""

import html
import re

__all__ = ["md", "plotly_text"]

# inline markup anywhere in a line: emphasis, code, links and images, HTML, tables,
# strikethrough, math, directives (:red[...]) and emoji / icon shortcodes, entities
_INLINE = re.compile(r"([\\`*_\[\]()!<>|~$:&])")
# markup at the start of a line: headings, lists, quotes, rules, ordered lists ("1.")
_LINE_START = re.compile(r"^(\s*\d*)([#>+\-=.)])")


def md(value):
    """``value`` as Markdown text that renders as exactly its characters, on one line.

    Examples
    --------
    >>> md("![b](http://127.0.0.1:8999/x.png)")
    '\\\\!\\\\[b\\\\]\\\\(http\\\\://127.0.0.1\\\\:8999/x.png\\\\)'
    >>> md("embeddings.npy")
    'embeddings.npy'
    """
    text = re.sub(r"[\r\n\t]+", " ", str(value))
    text = _INLINE.sub(r"\\\1", text)
    return _LINE_START.sub(r"\1\\\2", text)


def plotly_text(value):
    """``value`` for a plotly text or hover label: ``<``, ``>`` and ``&`` as entities, so a label
    holding ``<a href=...>`` or ``<b>`` shows as those characters, not as a link or bold text.

    Examples
    --------
    >>> plotly_text('<a href="http://x">click</a> & more')
    '&lt;a href="http://x"&gt;click&lt;/a&gt; &amp; more'
    """
    return html.escape(str(value), quote=False)
