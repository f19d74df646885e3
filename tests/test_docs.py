"""README.md and the pages in docs/ point only at things that exist.

- Every relative link and image (``[text](path)``, ``![alt](path)``) resolves to a file or
  folder, relative to the page that holds it; a ``#fragment`` is stripped first, and web links
  (any ``scheme:``) and pure ``#anchors`` are not files. A fragment that points into a markdown
  page must name one of its headings (GitHub's anchors).
- Every built-in named as ``noisylink run NAME``, ``noisylink check NAME`` (a scenario) or
  ``noisylink sweep NAME`` (a study or a scenario) exists; paths and uppercase placeholders
  (``SCENARIO``, ``STUDY``) are not names.
- README.md is a landing page: at most 15 KB, and it links every page of docs/.

Links inside fenced code blocks are code, not links; commands are read everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from noisylink.scenarios import builtin_names
from noisylink.sweeps.study import builtin_study_names

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [README, *PAGES]
README_LIMIT = 15 * 1024  # bytes

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
COMMAND = re.compile(r"\bnoisylink\s+(run|check|sweep)\s+([A-Za-z0-9_./-]+)")
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*")


def without_code_blocks(text: str) -> str:
    return FENCE.sub("", text)


def link_targets(text: str) -> list[str]:
    """The targets of the markdown links and images in ``text``, outside fenced code."""
    return LINK.findall(without_code_blocks(text))


def is_relative(target: str) -> bool:
    return not SCHEME.match(target) and not target.startswith("#")


def broken_links(text: str, base: Path) -> list[str]:
    """Relative link targets in ``text`` that name no file or folder under ``base``."""
    return [
        target for target in link_targets(text)
        if is_relative(target) and not (base / unquote(target.split("#", 1)[0])).exists()
    ]


def anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings of a markdown page (repeats get -1, -2, ...)."""
    found: set[str] = set()
    for heading in HEADING.findall(without_code_blocks(text)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, repeat = slug, 0
        while candidate in found:
            repeat += 1
            candidate = f"{slug}-{repeat}"
        found.add(candidate)
    return found


def broken_anchors(text: str, page: Path) -> list[str]:
    """Links whose ``#fragment`` names no heading of the markdown page they point at."""
    broken = []
    for target in link_targets(text):
        if SCHEME.match(target) or "#" not in target:
            continue
        path, fragment = target.split("#", 1)
        linked = (page.parent / unquote(path)) if path else page
        if (linked.suffix == ".md" and linked.is_file()
                and fragment not in anchors(linked.read_text(encoding="utf-8"))):
            broken.append(target)
    return broken


def unknown_builtins(text: str) -> list[str]:
    """``noisylink run/check/sweep NAME`` commands in ``text`` whose NAME is no built-in."""
    scenarios = set(builtin_names())
    studies = set(builtin_study_names())
    unknown = []
    for verb, name in COMMAND.findall(text):
        if "/" in name or name.endswith((".yaml", ".yml")) or PLACEHOLDER.fullmatch(name):
            continue
        known = scenarios | studies if verb == "sweep" else scenarios
        if name not in known:
            unknown.append(f"noisylink {verb} {name}")
    return unknown


def test_the_readme_and_the_docs_pages_are_there() -> None:
    assert README.is_file()
    assert len(PAGES) >= 8, [page.name for page in PAGES]


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    broken = {
        str(doc.relative_to(ROOT)): found for doc in DOCUMENTS
        if (found := broken_links(doc.read_text(encoding="utf-8"), doc.parent))
    }
    assert broken == {}


def test_every_link_fragment_into_a_page_names_one_of_its_headings() -> None:
    broken = {
        str(doc.relative_to(ROOT)): found for doc in DOCUMENTS
        if (found := broken_anchors(doc.read_text(encoding="utf-8"), doc))
    }
    assert broken == {}


def test_every_builtin_scenario_and_study_named_in_the_readme_and_docs_exists() -> None:
    unknown = {
        str(doc.relative_to(ROOT)): found for doc in DOCUMENTS
        if (found := unknown_builtins(doc.read_text(encoding="utf-8")))
    }
    assert unknown == {}


def test_the_readme_names_builtins_for_the_check_to_find() -> None:
    named = COMMAND.findall(README.read_text(encoding="utf-8"))
    assert ("run", "quickstart") in named
    assert ("sweep", "bitflip-robustness") in named


def test_the_readme_is_a_landing_page_of_at_most_15_kb() -> None:
    size = README.stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; move reference text to docs/"


def test_the_readme_links_every_docs_page() -> None:
    linked = {(ROOT / target.split("#", 1)[0]).resolve()
              for target in link_targets(README.read_text(encoding="utf-8"))
              if is_relative(target)}
    assert [page.name for page in PAGES if page.resolve() not in linked] == []


def test_a_link_to_a_missing_file_is_caught_and_web_links_code_and_anchors_are_not() -> None:
    text = README.read_text(encoding="utf-8") + (
        "\n[gone](docs/no-such-page.md#part) and ![gone too](docs/plots/none.png)\n"
        "[web](https://example.org/x.md) [mail](mailto:a@b.c) [here](#the-two-commands)\n"
        "[kept](docs/trust.md#trust-what-a-run-guarantees) [folder](noisylink/)\n"
        "```\n[in code](docs/not-a-link.md)\n```\n"
    )
    assert broken_links(text, ROOT) == ["docs/no-such-page.md#part", "docs/plots/none.png"]


def test_a_fragment_that_names_no_heading_is_caught() -> None:
    page = ROOT / "docs" / "scenarios.md"
    text = "[ok](#conventions) [ok](trust.md) [gone](#no-such-heading) [gone](trust.md#nope)\n"
    assert broken_anchors(text, page) == ["#no-such-heading", "trust.md#nope"]
    assert "necst-and-iabf-on-mnist-noisylink-eval-jscc" in anchors(
        "## NECST and IABF on MNIST (`noisylink eval-jscc`)\n")
    assert anchors("# A\n## A\n") == {"a", "a-1"}


def test_an_unknown_builtin_is_caught_and_paths_and_placeholders_are_not() -> None:
    text = (
        "noisylink run quickstart\nnoisylink run no-such-scenario --out x\n"
        "`noisylink check jpeg-bsc` and `noisylink check bitflip-robustness`\n"
        "noisylink sweep bitflip-robustness; noisylink sweep jpeg-bsc; noisylink sweep nope\n"
        "noisylink run SCENARIO --transport mqtt; noisylink sweep STUDY; noisylink run NAME\n"
        "noisylink run my.yaml; noisylink check scenarios/fading-radio.yaml\n"
    )
    assert unknown_builtins(text) == [
        "noisylink run no-such-scenario",
        "noisylink check bitflip-robustness",  # a study, not a scenario
        "noisylink sweep nope",
    ]
