"""mkdocs hooks: pages made from the tutorials and the model cards at build time.

Each ``tutorials/*.ipynb`` becomes ``tutorials/<name>.md`` (markdown cells as they are,
code cells as Python blocks, their stored outputs: text, tables and PNG figures), and each
``models/<dir>/MODEL_CARD.md`` becomes ``zoo/<dir>.md`` with the images beside it, so the
site shows them without copies in ``docs/`` that could drift. ``<!-- tutorials -->`` and
``<!-- model cards -->`` in a page are replaced by lists of links to them. No plugin is
needed (mkdocs-jupyter would execute the notebooks again at every build).

Docstrings use Sphinx roles (:func:`~probinfer.steer.fk`), which mkdocstrings renders as
text; :func:`on_page_content` drops the role and, for ``~``, the module path, as Sphinx does.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]


def _notebook_markdown(path: Path) -> str:
    notebook = json.loads(path.read_text())
    note = (f"*Notebook `tutorials/{path.name}`, executed by the test suite "
            "(`tests/test_tutorials.py`).*")
    parts = []
    for cell in notebook["cells"]:
        source = "".join(cell.get("source", ""))
        if cell["cell_type"] == "markdown":
            parts.append(source)
            if note:                      # below the notebook's title
                parts.append(note)
                note = ""
        elif cell["cell_type"] == "code" and source.strip():
            parts.append(f"```python\n{source}\n```")
            for output in cell.get("outputs", []):
                parts.append(_output_markdown(output))
    return "\n\n".join(p for p in parts if p) + "\n"


def _output_markdown(output: dict) -> str:
    if output.get("output_type") == "stream" and output.get("name") == "stdout":
        return "```text\n" + "".join(output["text"]).rstrip() + "\n```"
    data = output.get("data", {})
    if "image/png" in data:
        png = "".join(data["image/png"]).replace("\n", "")
        base64.b64decode(png, validate=True)
        return f'<img alt="output figure" src="data:image/png;base64,{png}"/>'
    if "text/html" in data and "<table" in "".join(data["text/html"]):
        return "".join(data["text/html"])
    if "text/plain" in data:
        return "```text\n" + "".join(data["text/plain"]).rstrip() + "\n```"
    return ""


def _title(path: Path) -> str:
    if path.suffix == ".ipynb":
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                match = re.search(r"^#\s+(.+)$", "".join(cell["source"]), re.M)
                if match:
                    return match.group(1).strip()
        return path.stem
    match = re.search(r"^#\s+(.+)$", path.read_text(), re.M)
    return match.group(1).strip() if match else path.parent.name


def _tutorials():
    return sorted((ROOT / "tutorials").glob("*.ipynb"))


def _cards():
    return sorted((ROOT / "models").glob("*/MODEL_CARD.md"))


def on_files(files, config):
    for path in _tutorials():
        files.append(File.generated(config, f"tutorials/{path.stem}.md",
                                    content=_notebook_markdown(path)))
    for card in _cards():
        folder = card.parent
        files.append(File.generated(config, f"zoo/{folder.name}.md",
                                    content=card.read_text()))
        for image in sorted(folder.glob("*.png")):
            files.append(File.generated(config, f"zoo/{folder.name}/{image.name}",
                                        abs_src_path=str(image)))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri.startswith("zoo/") and page.file.src_uri.count("/") == 1:
        folder = Path(page.file.src_uri).stem
        markdown = re.sub(r"\]\((?!https?://|/|#)([^)]+\.png)\)", rf"]({folder}/\1)", markdown)
    if "<!-- tutorials -->" in markdown:
        items = "\n".join(f"- [{_title(p)}](tutorials/{p.stem}.md) (`tutorials/{p.name}`)"
                          for p in _tutorials())
        markdown = markdown.replace("<!-- tutorials -->", items)
    if "<!-- model cards -->" in markdown:
        items = "\n".join(f"- [{_title(c)}](zoo/{c.parent.name}.md) (`models/{c.parent.name}/`)"
                          for c in _cards())
        markdown = markdown.replace("<!-- model cards -->", items)
    return markdown


_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc|const):(<code>)~?([^<]*)</code>")


def _role(match) -> str:
    text = match.group(2)
    if match.group(0).split("<code>")[1].startswith("~"):
        text = text.rsplit(".", 1)[-1]
    return f"<code>{text}</code>"


def on_page_content(html, page, config, files):
    return _ROLE.sub(_role, html)
