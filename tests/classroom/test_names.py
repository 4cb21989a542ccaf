"""Display names and lesson titles from hostile or merely odd input (hypothesis).

Whatever arrives, the answer is a clean string or ``invalid_name``/``invalid_title``: never a
crash, never something stored or shown that a teacher cannot read.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classroom.errors import ClassroomError
from classroom.lessons import (
    MAX_NAME_LENGTH,
    MAX_TITLE_LENGTH,
    CreatedLesson,
    LessonService,
    normalise_name,
    normalise_title,
)
from classroom.ratelimit import MemoryFailureLimiter
from classroom.storage import Database
from tests.classroom.support import NAME, PASSWORD, RecordingHasher

FORBIDDEN_IN_NAMES = ("Cc", "Cf", "Cs")
FORBIDDEN_IN_TITLES = ("Cc", "Cs")

# Letters that never compose or decompose under NFC, so lengths are what they look like.
LETTERS = "abcxyzđăâêôơưABC0123456789"
PLAIN = st.text(alphabet=LETTERS, min_size=1)
SPACES = st.text(alphabet=" \t\u00a0\u2009\u3000", max_size=10)


def with_one_of(categories: tuple[str, ...]) -> st.SearchStrategy[str]:
    forbidden = st.characters(categories=categories)  # type: ignore[arg-type]
    return st.tuples(st.text(max_size=20), forbidden, st.text(max_size=20)).map("".join)


def refused_code(function, value: object) -> str:
    with pytest.raises(ClassroomError) as refused:
        function(value)
    return refused.value.code


@given(with_one_of(FORBIDDEN_IN_NAMES))
def test_names_with_control_format_or_surrogate_characters_are_invalid(name: str) -> None:
    assert refused_code(normalise_name, name) == "invalid_name"


@given(st.text(alphabet=" \u00a0\u2009\u3000\u2028", max_size=50))
def test_blank_names_are_invalid(name: str) -> None:
    assert refused_code(normalise_name, name) == "invalid_name"


@given(st.text(alphabet=LETTERS + " ", min_size=MAX_NAME_LENGTH + 1, max_size=500))
def test_long_names_are_invalid(name: str) -> None:
    if len(" ".join(name.split())) > MAX_NAME_LENGTH:
        assert refused_code(normalise_name, name) == "invalid_name"


@given(SPACES, st.lists(PLAIN, min_size=1, max_size=4), SPACES)
def test_spacing_is_tidied(before: str, words: list[str], after: str) -> None:
    raw = before + "\u3000 ".join(words) + after
    expected = " ".join(words)
    if len(expected) <= MAX_NAME_LENGTH and "\t" not in raw:
        assert normalise_name(raw) == expected
    else:
        assert refused_code(normalise_name, raw) == "invalid_name"


@given(st.one_of(st.text(), st.none(), st.integers(), st.binary(), st.lists(st.text())))
def test_any_name_is_clean_or_invalid(raw: object) -> None:
    try:
        name = normalise_name(raw)
    except ClassroomError as error:
        assert error.code == "invalid_name"
        return
    assert 1 <= len(name) <= MAX_NAME_LENGTH
    assert name == name.strip() and "  " not in name
    assert unicodedata.is_normalized("NFC", name)
    assert not any(unicodedata.category(c) in FORBIDDEN_IN_NAMES for c in name)
    assert normalise_name(name) == name


@given(with_one_of(FORBIDDEN_IN_TITLES))
def test_titles_with_control_or_surrogate_characters_are_invalid(title: str) -> None:
    assert refused_code(normalise_title, title) == "invalid_title"


@given(st.one_of(st.text(), st.none(), st.integers(), st.binary()))
def test_any_title_is_clean_or_invalid(raw: object) -> None:
    try:
        title = normalise_title(raw)
    except ClassroomError as error:
        assert error.code == "invalid_title"
        return
    assert 1 <= len(title) <= MAX_TITLE_LENGTH
    assert title == title.strip()
    assert unicodedata.is_normalized("NFC", title)
    assert not any(unicodedata.category(c) in FORBIDDEN_IN_TITLES for c in title)
    assert normalise_title(title) == title


@given(
    st.text(alphabet=LETTERS, min_size=MAX_TITLE_LENGTH + 1, max_size=1000)
    | st.text(alphabet=" \u00a0\u3000", max_size=50)
)
def test_long_or_blank_titles_are_invalid(title: str) -> None:
    assert refused_code(normalise_title, title) == "invalid_title"


def test_vietnamese_names_survive_in_composed_form() -> None:
    decomposed = unicodedata.normalize("NFD", NAME)
    assert normalise_name(f"  {decomposed} ") == NAME


# Through the service and a real database: whatever is generated, nothing but ClassroomError
# escapes, and what is stored reads back exactly.
SERVICE_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@SERVICE_SETTINGS
@given(title=st.text(max_size=250))
async def test_any_title_creates_a_lesson_or_is_invalid_title(
    database: Database, title: str
) -> None:
    service = LessonService(database.lessons, MemoryFailureLimiter(), hasher=RecordingHasher())
    try:
        created = await service.create_lesson(title, PASSWORD)
    except ClassroomError as error:
        assert error.code == "invalid_title"
        return
    assert created.lesson.title == normalise_title(title)
    assert await service.get_lesson(created.lesson.id) == created.lesson


@SERVICE_SETTINGS
@given(name=st.text(max_size=100))
async def test_any_name_is_admitted_or_is_invalid_name(database: Database, name: str) -> None:
    service = LessonService(database.lessons, MemoryFailureLimiter(), hasher=RecordingHasher())
    created: CreatedLesson = await service.create_lesson("Hóa học", PASSWORD)
    try:
        admission = await service.admit_guest(created.lesson.code, PASSWORD, name, "192.0.2.1")
    except ClassroomError as error:
        assert error.code == "invalid_name"
        return
    assert admission.name == normalise_name(name)
