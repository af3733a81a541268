"""A self-contained HTML report: headed sections of text, tables, figures and links.

Paths in a report are written relative to the report's folder, so the
folder can be moved or published as it is.

Example:

>>> report = Report("BioFace-TF demo")
>>> report.section("Analysis", "One row per face.", figures=[("demo_out/figure.png", "faces")])
>>> report.write("demo_out/report.html")     # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import html
import os
import pathlib

STYLE = """
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; image-rendering: pixelated; border: 1px solid #eee; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; }
code, pre { background: #f4f4f4; } pre { padding: 0.6em; overflow-x: auto; }
"""


@dataclasses.dataclass
class Section:
    heading: str
    paragraphs: list[str]
    figures: list[tuple[pathlib.Path, str]]
    table: list[list[str]] | None
    links: list[tuple[pathlib.Path, str]]
    code: str | None


class Report:
    """Sections in order; :meth:`write` renders them to one HTML file."""

    def __init__(self, title: str):
        self.title = title
        self.sections: list[Section] = []

    def section(
        self,
        heading: str,
        *paragraphs: str,
        figures=(),
        table: list[list] | None = None,
        links=(),
        code: str | None = None,
    ) -> None:
        """Add a section.

        Args:
            heading: the section's title.
            paragraphs: plain text (escaped), one paragraph each.
            figures: ``(image path, caption)`` pairs.
            table: rows of cells, the first row the header.
            links: ``(path, text)`` pairs.
            code: a preformatted block (e.g. commands).
        """
        self.sections.append(
            Section(
                heading,
                list(paragraphs),
                [(pathlib.Path(p), c) for p, c in figures],
                None if table is None else [[str(c) for c in row] for row in table],
                [(pathlib.Path(p), t) for p, t in links],
                code,
            )
        )

    def write(self, path: str | pathlib.Path) -> pathlib.Path:
        """Write the report; image and link paths become relative to its folder."""
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        base = path.parent.resolve()

        def rel(target: pathlib.Path) -> str:
            return html.escape(pathlib.Path(os.path.relpath(target.resolve(), base)).as_posix())

        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for s in self.sections:
            out.append(f"<h2>{html.escape(s.heading)}</h2>")
            out += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
            if s.table:
                header, *rows = s.table
                out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in header) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
                out.append("</table>")
            for image, caption in s.figures:
                out.append(
                    f'<figure><a href="{rel(image)}"><img src="{rel(image)}" alt="{html.escape(caption)}"></a>'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
            if s.links:
                out.append("<ul>" + "".join(f'<li><a href="{rel(p)}">{html.escape(t)}</a></li>' for p, t in s.links) + "</ul>")
            if s.code:
                out.append(f"<pre><code>{html.escape(s.code)}</code></pre>")
        out.append("</body></html>")
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
        return path
