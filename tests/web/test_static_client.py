"""The browser client in ``web/static``: message catalogues, pages that live under the strict
CSP, the ``data-testid`` contract the browser tests rely on, and the pages as the app serves them.

The client is plain ES modules with no build step, so these checks read the files themselves:
the catalogues (``js/i18n/<lang>.js``, one ``"key": "value",`` entry per line), every key the
modules and pages use, and every error code the server can answer a ``join`` with.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from classroom import errors as classroom_errors
from media.ice import IceSettings
from signaling.errors import ErrorCode
from tests.unavailable import unavailable
from web.app import create_app
from web.config import Settings

with warnings.catch_warnings():
    # Starlette prefers the httpx2 fork for its test client; the project pins httpx.
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "web" / "static"
CATALOGUES = STATIC / "js" / "i18n"
PROTOCOL = REPO / "docs" / "protocol.md"
LANGUAGES = ("vi", "en")
PAGES = {"index.html": "/", "teach.html": "/teach", "lesson.html": "/l/123456789"}
#: The teacher's account pages (tests/web/test_account_pages.py checks what is on them).
ACCOUNT_PAGES = {
    "login.html": "/login",
    "lessons.html": "/lessons",
    "report.html": "/lessons/00000000-0000-4000-8000-000000000000/report",
    "class-report.html": "/classes/00000000-0000-4000-8000-000000000000/report",
    "roster.html": "/classes/00000000-0000-4000-8000-000000000000/roster",
}

# -- reading the client ---------------------------------------------------------------------

_ENTRY = re.compile(r'^\s*"(?P<key>[^"]+)":\s*(?P<value>"(?:[^"\\]|\\.)*"),\s*$')
_ENTRY_LIKE = re.compile(r'^\s*"[^"]*"\s*:')
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def load_catalogue(language: str) -> dict[str, str]:
    """``js/i18n/<language>.js`` as a dict; every line that looks like an entry must parse."""
    entries: dict[str, str] = {}
    for number, line in enumerate((CATALOGUES / f"{language}.js").read_text("utf-8").splitlines()):
        if not _ENTRY_LIKE.match(line):
            continue
        match = _ENTRY.match(line)
        assert match, f"{language}.js line {number + 1} is not a one-line entry: {line!r}"
        key = match["key"]
        assert key not in entries, f"{language}.js defines {key!r} twice"
        entries[key] = json.loads(match["value"])
    assert entries, f"{language}.js has no entries"
    return entries


@pytest.fixture(scope="module")
def catalogues() -> dict[str, dict[str, str]]:
    return {language: load_catalogue(language) for language in LANGUAGES}


def modules() -> list[Path]:
    return sorted(STATIC.rglob("*.js"))


def code_modules() -> list[Path]:
    """The modules other than the catalogues."""
    return [path for path in modules() if path.parent != CATALOGUES]


def html_pages() -> list[Path]:
    return sorted(STATIC.glob("*.html"))


class _Page(HTMLParser):
    """What the CSP and the contract tests need from one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_scripts: list[str] = []
        self.style_blocks = 0
        self._in_script = False
        self._script_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "style":
            self.style_blocks += 1
        if tag == "script":
            self._in_script = True
            self._script_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
            body = "".join(self._script_text).strip()
            if body:
                self.inline_scripts.append(body)

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self._script_text.append(data)

    def attribute_values(self, name: str) -> Iterator[str]:
        for _, attrs in self.tags:
            value = attrs.get(name)
            if value is not None:
                yield value

    def testids(self) -> set[str]:
        return set(self.attribute_values("data-testid"))


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text("utf-8"))
    page.close()
    return page


def _strip_comments(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.sub(r"(?m)^\s*//.*$", "", source)


def used_keys() -> dict[str, set[str]]:
    """Catalogue keys the client uses, and where: ``t("…")``, the helpers that take a key as
    their second argument, ``data-i18n*`` attributes, and any other string literal that has the
    shape of a key in one of the catalogue's namespaces."""
    namespaces = {key.split(".")[0] for key in load_catalogue("en")}
    prefixes = "|".join(map(re.escape, sorted(namespaces)))
    key_shape = re.compile(rf"^(?:{prefixes})\.[a-z0-9_]+$")
    used: dict[str, set[str]] = {}
    calls = re.compile(
        r"""\bt\(\s*["']([^"'`]+)["']"""
        r"""|\b(?:setText|setTitle|setAriaLabel|showNotice)\([^,()]+,\s*["']([^"'`]+)["']"""
    )
    literal = re.compile(r"""["']([a-z][a-z0-9_]*\.[a-z0-9_.]+)["']""")
    for path in code_modules():
        source = _strip_comments(path.read_text("utf-8"))
        for match in calls.finditer(source):
            used.setdefault(match[1] or match[2], set()).add(path.name)
        for match in literal.finditer(source):
            if key_shape.match(match[1]):
                used.setdefault(match[1], set()).add(path.name)
    for path in html_pages():
        page = parse(path)
        for attribute in (
            "data-i18n",
            "data-i18n-placeholder",
            "data-i18n-aria-label",
            "data-i18n-title",
        ):
            for key in page.attribute_values(attribute):
                used.setdefault(key, set()).add(path.name)
    return used


#: Keys built at run time from a prefix and a state (``state.${state}``, …): all must exist.
DYNAMIC_KEYS = (
    [f"state.{s}" for s in ("connecting", "connected", "reconnecting", "closed")]
    + [f"quality.{q}" for q in ("good", "fair", "poor", "unknown")]
    + [f"participant.{k}_{s}" for k in ("audio", "video") for s in ("on", "off", "none")]
    + [f"notice.{r}_{k}" for r in ("muted", "not_allowed") for k in ("audio", "video")]
    + [f"controls.{d}_{a}" for d in ("mic", "camera") for a in ("turn_off", "turn_on", "retry")]
    + [f"link.{state}" for state in ("ok", "weak", "audio_only")]
)

#: Problems the client itself reports with `data-code` (join-error, media-error, closed pages).
CLIENT_CODES = (
    "permission_denied",
    "no_device",
    "no_camera",
    "no_microphone",
    "device_busy",
    "no_webrtc",
    "connection_lost",
    "replaced",
    "policy",
    "timeout",
    "invalid_code",
    "unknown",
)


def protocol_join_errors() -> set[str]:
    """The error codes docs/protocol.md lists for ``join``."""
    text = PROTOCOL.read_text("utf-8")
    section = text[text.index("### `join`") :]
    section = section[: section.index("\n### ", 1)]
    errors = section[section.index("Errors:") :].split("\n\n")[0]
    codes = set(re.findall(r"(?<!\+ )`([a-z_]+)`", errors))  # "(+ `retry_after`)" is a field
    assert {"bad_password", "rate_limited", "resume_failed"} <= codes, codes
    return codes


def join_error_codes() -> set[str]:
    """Every code a join can be refused with: the protocol's list, the codes any request can
    get before the join is read, and the moderation issue's lock (announced, not yet built)."""
    return protocol_join_errors() | {
        "malformed",
        "message_too_big",
        "internal",
        "not_authenticated",
        "auth_timeout",
        "lesson_locked",
    }


def server_codes() -> set[str]:
    classroom = {
        value
        for name, value in vars(classroom_errors).items()
        if name.isupper() and isinstance(value, str)
    }
    return {code.value for code in ErrorCode} | classroom


# -- catalogues -------------------------------------------------------------------------------


def test_catalogues_have_the_same_keys(catalogues: dict[str, dict[str, str]]) -> None:
    vi, en = catalogues["vi"], catalogues["en"]
    assert sorted(set(vi) - set(en)) == [], "keys only in vi.js"
    assert sorted(set(en) - set(vi)) == [], "keys only in en.js"


def test_catalogues_have_no_empty_messages(catalogues: dict[str, dict[str, str]]) -> None:
    for language, entries in catalogues.items():
        empty = [key for key, value in entries.items() if not value.strip()]
        assert empty == [], f"empty messages in {language}.js"


def test_placeholders_match_between_languages(catalogues: dict[str, dict[str, str]]) -> None:
    for key, english in catalogues["en"].items():
        vietnamese = catalogues["vi"][key]
        assert set(_PLACEHOLDER.findall(vietnamese)) == set(_PLACEHOLDER.findall(english)), key


def test_vietnamese_is_written_with_diacritics(catalogues: dict[str, dict[str, str]]) -> None:
    marked = re.compile("[ăâđêôơưàáảãạèéẻẽẹìíỉĩịòóỏõọùúủũụỳýỷỹỵ]", re.IGNORECASE)
    vi = catalogues["vi"]
    with_marks = [key for key, value in vi.items() if marked.search(value)]
    assert len(with_marks) > 0.8 * len(vi), "most Vietnamese messages should carry diacritics"
    assert vi["join.password"] == "Mật khẩu"
    assert vi["controls.mic_turn_off"] == "Tắt micrô"


def test_every_used_key_exists(catalogues: dict[str, dict[str, str]]) -> None:
    used = used_keys()
    assert len(used) > 50, "the key scanner found suspiciously few keys"
    for language, entries in catalogues.items():
        missing = {key: sorted(where) for key, where in used.items() if key not in entries}
        assert missing == {}, f"keys used but missing from {language}.js"


def test_keys_built_at_run_time_exist(catalogues: dict[str, dict[str, str]]) -> None:
    for language, entries in catalogues.items():
        assert [key for key in DYNAMIC_KEYS if key not in entries] == [], language


def test_every_join_error_has_a_message(catalogues: dict[str, dict[str, str]]) -> None:
    codes = join_error_codes()
    unknown = codes - server_codes() - {"lesson_locked"}
    assert unknown == set(), "join error codes the server does not define"
    for language, entries in catalogues.items():
        missing = sorted(code for code in codes if f"error.{code}" not in entries)
        assert missing == [], f"join errors without a message in {language}.js"


def test_every_signaling_error_has_a_message(catalogues: dict[str, dict[str, str]]) -> None:
    """Any request can fail, and the pages show `error.<code>` for the code they get."""
    for language, entries in catalogues.items():
        missing = sorted(code.value for code in ErrorCode if f"error.{code.value}" not in entries)
        assert missing == [], f"signaling errors without a message in {language}.js"


def test_lesson_creation_and_client_errors_have_messages(
    catalogues: dict[str, dict[str, str]],
) -> None:
    codes = {"invalid_title", "weak_password", "malformed", "too_big", *CLIENT_CODES}
    for language, entries in catalogues.items():
        missing = sorted(code for code in codes if f"error.{code}" not in entries)
        assert missing == [], f"errors without a message in {language}.js"


def test_rate_limited_message_shows_the_wait(catalogues: dict[str, dict[str, str]]) -> None:
    for entries in catalogues.values():
        assert "{retry_after}" in entries["error.rate_limited"]


# -- pages under the CSP ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_has_nothing_inline(name: str) -> None:
    """``script-src 'self'; style-src 'self'``: no inline script, style block, style attribute
    or event-handler attribute would run."""
    page = parse(STATIC / name)
    assert page.inline_scripts == []
    assert page.style_blocks == 0
    for tag, attrs in page.tags:
        assert "style" not in attrs, f"<{tag} style=…>"
        handlers = [a for a in attrs if a.startswith("on")]
        assert handlers == [], f"<{tag}> has inline handlers {handlers}"
        assert not (attrs.get("href") or "").lower().startswith("javascript:")


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_assets_exist(name: str) -> None:
    page = parse(STATIC / name)
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts, "a page without its module"
    for attrs in scripts:
        assert attrs.get("type") == "module", attrs
        src = attrs.get("src") or ""
        assert src.startswith("/static/"), src
        assert (STATIC / src.removeprefix("/static/")).is_file(), src
    links = [attrs for tag, attrs in page.tags if tag == "link"]
    assert any(a.get("rel") == "stylesheet" for a in links)
    for attrs in links:
        href = attrs.get("href") or ""
        assert href.startswith("/static/"), href
        assert (STATIC / href.removeprefix("/static/")).is_file(), href


def test_stylesheet_urls_exist() -> None:
    for css in STATIC.rglob("*.css"):
        for url in re.findall(r"url\(\"?([^\")]+)\"?\)", css.read_text("utf-8")):
            assert url.startswith("/static/"), url
            assert (STATIC / url.removeprefix("/static/")).is_file(), url


def test_module_imports_resolve() -> None:
    importing = re.compile(r"""^\s*(?:import|export)\b[^"']*?\bfrom\s*["']([^"']+)["']""", re.M)
    for path in modules():
        for target in importing.findall(path.read_text("utf-8")):
            assert target.startswith("./") or target.startswith("../"), (path.name, target)
            assert (path.parent / target).resolve().is_file(), (path.name, target)


def test_pages_have_the_language_switch() -> None:
    for path in html_pages():
        page = parse(path)
        selects = [
            a for t, a in page.tags if t == "select" and a.get("data-testid") == "lang-switch"
        ]
        assert len(selects) == 1, path.name
        options = {a.get("value") for t, a in page.tags if t == "option"}
        assert set(LANGUAGES) <= options, path.name


LESSON_TESTIDS = {
    "lang-switch",
    "join-form",
    "join-name",
    "join-password",
    "join-submit",
    "join-error",
    "lesson-title",
    "media-error",
    "student-view",
    "teacher-video",
    "self-preview",
    "toggle-mic",
    "toggle-camera",
    "leave",
    "connection-state",
    "quality",
    "enable-sound",
    "notice",
    "peer-audio",
    "closed-view",
    "toggle-data-saver",
    "downlink-notice",
    "video-paused",
    "video-paused-initial",
    "video-paused-name",
    "video-paused-text",
}
TEACH_TESTIDS = {
    "lang-switch",
    "create-form",
    "create-title",
    "create-password",
    "create-submit",
    "create-error",
    "lesson-link",
    "copy-link",
    "lesson-code",
    "start-teaching",
    "resume-lesson",
    "teacher-view",
    "self-preview",
    "toggle-mic",
    "toggle-camera",
    "end-lesson",
    "connection-state",
    "quality",
    "participant-list",
    "student-grid",
    "grid-prev",
    "grid-next",
    "grid-page",
    "lesson-title",
    "enable-sound",
    "closed-view",
}


@pytest.mark.parametrize(
    ("name", "expected"), [("lesson.html", LESSON_TESTIDS), ("teach.html", TEACH_TESTIDS)]
)
def test_testid_contract(name: str, expected: set[str]) -> None:
    """The browser tests drive the pages by these ``data-testid`` values: each exactly once."""
    page = parse(STATIC / name)
    ids = list(page.attribute_values("data-testid"))
    assert sorted(expected - set(ids)) == []
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicated == []


def test_media_elements_play_inline() -> None:
    for name in ("lesson.html", "teach.html"):
        for tag, attrs in parse(STATIC / name).tags:
            if tag == "video":
                assert "playsinline" in attrs and "autoplay" in attrs, (name, attrs)
        page = parse(STATIC / name)
        previews = [a for t, a in page.tags if a.get("data-testid") == "self-preview"]
        assert previews and all("muted" in a for a in previews), name


# -- safety of the modules ----------------------------------------------------------------------


def test_no_html_injection_or_eval() -> None:
    """Names and titles are untrusted: never through innerHTML; and the CSP forbids eval."""
    forbidden = re.compile(
        r"\.innerHTML\b|\.outerHTML\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\("
    )
    for path in modules():
        found = forbidden.findall(_strip_comments(path.read_text("utf-8")))
        assert found == [], path.name


def test_no_public_stun_server() -> None:
    """No ICE server is written into the client: its peer connections use only what the
    server's join response names (its TURN relay), and none by default."""
    sources = {path.name: path.read_text("utf-8") for path in modules()}
    url = re.compile(r"[\"'`](?:stun|turn)s?:[\w\[]")
    assert not any(url.search(s) for s in sources.values())
    media = sources["media.js"]
    assert "export function createPeerConnection(iceServers = []) {" in media
    assert "new RTCPeerConnection({ iceServers: usableIceServers(iceServers) })" in media
    assert media.count("new RTCPeerConnection(") == 1


def test_secrets_are_not_logged() -> None:
    logging = re.compile(r"console\.\w+\(([^;]*)\)")
    for path in code_modules():
        for arguments in logging.findall(path.read_text("utf-8")):
            assert not re.search(r"password|token", arguments, re.I), (path.name, arguments)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(STATIC)))
def test_module_syntax(path: Path) -> None:
    """``node --check`` of each file as an ES module (read from stdin with
    ``--input-type=module``: given a ``.js`` path, Node would not parse it as a module).

    Without Node.js this skips on a laptop, but fails under ``CI`` (.ci/run installs it)."""
    if shutil.which("node") is None:
        unavailable("Node.js is not installed: the client's modules are not syntax-checked")
    result = subprocess.run(
        ["node", "--input-type=module", "--check"],
        input=path.read_text("utf-8"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# -- served by the app ----------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(tls=False, data_dir=tmp_path, ice=IceSettings.loopback())
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_pages_are_served_with_the_csp(client: TestClient) -> None:
    for name, route in {**PAGES, **ACCOUNT_PAGES}.items():
        response = client.get(route)
        assert response.status_code == 200, route
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response.text == (STATIC / name).read_text("utf-8"), route


def test_assets_are_served(client: TestClient) -> None:
    for path in STATIC.rglob("*"):
        if path.is_file() and path.suffix in {".js", ".css", ".svg"}:
            url = "/static/" + path.relative_to(STATIC).as_posix()
            response = client.get(url)
            assert response.status_code == 200, url
            if path.suffix == ".js":
                assert "javascript" in response.headers["content-type"], url
