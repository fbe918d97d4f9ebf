"""Fragments are not extension services (issue 11 point 9): ">", "y", "+", "-", ".", "?" earned
"2+N" credit, a KPI reported upward."""

from __future__ import annotations

import pytest

from mailbot.rules.values import extension_services, fragments_not_names, is_not_a_name, split_services


@pytest.mark.parametrize("text, services, told", [
    ("科普、>、y、+、-、.、?", ["科普"], [">", "y", "+"]),
    ("美术,x,3,2.5", ["美术"], ["x", "3", "2.5"]),
    ("科普、美术、Python、3D打印", ["科普", "美术", "Python", "3D打印"], []),
    ("2、科普", ["科普"], []),  # the "2" of 2+N is a placeholder, not a fragment to complain about
    ("无", [], []),
])
def test_fragments_do_not_count_and_are_named(text, services, told):
    names = split_services(text)
    assert extension_services(names) == services
    assert fragments_not_names(names) == told


def test_one_chinese_character_is_still_a_name():
    assert not is_not_a_name("书") and is_not_a_name("Y") and is_not_a_name("？")
