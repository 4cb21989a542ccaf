"""Chat text rules and the history, without I/O."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classroom.chat import MAX_LINE_BREAKS, ChatLog, ChatMessage, clean_text
from classroom.errors import ClassroomError


def message(i: int, to: str | None = None, sender: str = "p_a") -> ChatMessage:
    return ChatMessage(f"m_{i}", sender, "An", "student", f"tin {i}", float(i), to)


@given(st.text(max_size=600))
def test_clean_text_shows_only_what_it_accepts(text: str) -> None:
    try:
        clean = clean_text(text, 500)
    except ClassroomError as error:
        assert error.code == "invalid_message" and error.message
        return
    assert 0 < len(clean) <= 500
    assert clean == clean.strip() and unicodedata.is_normalized("NFC", clean)
    assert clean.count("\n") <= MAX_LINE_BREAKS
    assert all(
        c == "\n" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in clean
    )
    assert clean_text(clean, 500) == clean  # cleaning twice changes nothing


@pytest.mark.parametrize(
    "bad", ["", " \n\t ", "a" * 501, "bell\x07", "rtl\u202eoverride", "zero\u200bwidth", "a\u2028b"]
)
def test_clean_text_refuses(bad: str) -> None:
    with pytest.raises(ClassroomError) as error:
        clean_text(bad, 500)
    assert error.value.code == "invalid_message"


def test_clean_text_keeps_vietnamese_and_line_breaks() -> None:
    decomposed = unicodedata.normalize("NFD", "Tiếng Việt\r\ncó dấu")
    assert clean_text(decomposed, 500) == "Tiếng Việt\ncó dấu"


def test_the_history_keeps_the_last_messages_and_private_ones_for_their_two_people() -> None:
    log = ChatLog(3)
    for i in range(4):
        log.add(message(i))
    assert [m.id for m in log.last(10)] == ["m_1", "m_2", "m_3"]
    log.add(message(9, to="p_teacher"))
    assert [m.id for m in log.visible_to("p_other")] == ["m_2", "m_3"]
    assert [m.id for m in log.visible_to("p_teacher")] == ["m_2", "m_3", "m_9"]
    assert [m.id for m in log.visible_to("p_a")] == ["m_2", "m_3", "m_9"]
    assert log.delete("m_2") is not None and log.delete("m_2") is None
    assert [m.id for m in log.last(10)] == ["m_3", "m_9"] and len(log) == 2
    assert log.get("m_3") is not None and log.last(0) == []
