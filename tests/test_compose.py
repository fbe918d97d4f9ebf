"""Every email kind renders from realistic data and says the facts in both the text and the HTML."""

from __future__ import annotations

import copy
import io
import re

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbot.outbound.compose import KINDS, _tidy, compose, compose_to

RECEIPT = dict(
    school_names=["安溪县东门小学"],
    month_label="2022年10月",
    rows=[dict(school="安溪县东门小学", schools_count=1, enrolled=1850, participating=1750, two_plus_n=True,
               services=["科普", "文艺", "劳动", "阅读"], n=4, sheet="Sheet1", row_number=5)],
    rejected_rows=[dict(school_as_written="东门小学东校区", sheet="Sheet1", row_number=6,
                        errors=["Sheet1 第6行D列：在校学生数写作“约1200”，请只填阿拉伯数字。"])],
    warnings=["Sheet1 第5行C列：开展课后服务学校数未填写，已按1所登记。"],
    late=True,
    deadline_label="2022年10月24日",
    received_label="2022年10月25日 00:10",
    replaces=[dict(school="安溪县东门小学", received_label="2022年10月20日 16:48")],
    mailbox_label="初幼教股",
    wrong_mailbox_note="贵校为小学，汇总表应发送至初幼教股邮箱 chuyoujiao@163.com；本次已照常登记。",
)
REJECTION = dict(
    school_names=["安溪县第六实验小学"],
    problems=["Sheet1 第5行：参与课后服务学生数（1554）多于在校学生数（1417），请核对。",
              "附件“汇总表.rar”是 RAR 压缩包，系统无法打开，请直接发送 .xlsx、.xls 或 .docx 文件。"],
    month_label="2022年10月",
    mailbox_label="初幼教股",
    deadline_label="2022年10月24日",
)
QUARANTINE = dict(
    sender="someone@qq.com",
    subject="城南实小10月课后服务汇总表",
    received_label="2022年10月21日 08:15",
    quarantine_id="17",
    reason="sender not in the roster",
    candidate_schools=["安溪县城南实验小学"],
)
FAILURE = dict(
    mailbox="zjg",
    message_id="202211010920414434918@163.com",
    sender="pwzx_ax@163.com",
    subject="蓬莱中学10月份课后服务报表",
    error="WorkerFailure: the table reader timed out after 30 s",
    attempts=3,
)
CONTEXTS = {"receipt": RECEIPT, "rejection": REJECTION, "operator_quarantine": QUARANTINE,
            "operator_failure": FAILURE}
FACTS = {
    "receipt": ["安溪县东门小学", "2022年10月", "1850", "1750", "科普、文艺、劳动、阅读", "2+4", "第5行",
                "第6行", "东门小学东校区", "约1200", "已按1所登记", "逾期", "2022年10月24日",
                "2022年10月25日 00:10", "2022年10月20日 16:48", "替换", "chuyoujiao@163.com",
                "回复本邮件", "安溪县教育局初幼教股（本邮件由系统自动发送）"],
    "rejection": ["安溪县第六实验小学", "1554", "1417", "汇总表.rar", "2022年10月24日", "已预填学校名称",
                  ".xlsx", "超大附件", "照片", "直接作为附件", "安溪县教育局初幼教股（本邮件由系统自动发送）"],
    "operator_quarantine": ["someone@qq.com", "城南实小10月课后服务汇总表", "2022年10月21日 08:15",
                            "sender not in the roster", "安溪县城南实验小学",
                            "mailbot quarantine approve 17 --remember", "mailbot quarantine reject 17"],
    "operator_failure": ["zjg", "202211010920414434918@163.com", "pwzx_ax@163.com", "蓬莱中学10月份课后服务报表",
                         "timed out after 30 s", "3 次"],
}


def test_every_kind_has_a_context_here():
    assert set(CONTEXTS) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_states_its_facts_in_text_and_html(kind):
    composed = compose(kind, CONTEXTS[kind])

    for fact in FACTS[kind]:
        assert fact in composed.text, f"{kind} text lacks {fact!r}"
        assert fact in composed.html, f"{kind} html lacks {fact!r}"
    assert "\n" not in composed.subject and composed.subject.strip() == composed.subject
    assert "{{" not in composed.text + composed.html and "{%" not in composed.text + composed.html


@pytest.mark.parametrize("kind", KINDS)
def test_html_needs_nothing_from_the_network(kind):
    html = compose(kind, CONTEXTS[kind]).html.lower()

    for forbidden in ("http://", "https://", "<img", "<link", "<script", "<style"):
        assert forbidden not in html
    cells = re.findall(r"<t[dh]\b[^>]*>", html)
    assert all("border:1px solid" in cell for cell in cells)  # webmail drops <style>: inline borders


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_key_is_an_error_not_a_blank(kind):
    for key in CONTEXTS[kind]:
        context = {k: v for k, v in CONTEXTS[kind].items() if k != key}
        with pytest.raises(jinja2.UndefinedError):
            compose(kind, context)


def test_receipt_subject_names_school_and_month():
    on_time = dict(RECEIPT, late=False)

    assert compose("receipt", on_time).subject == "回执：安溪县东门小学2022年10月课后服务情况已收到"
    assert compose("receipt", RECEIPT).subject == "回执：安溪县东门小学2022年10月课后服务情况已收到（逾期报送）"


def test_a_plain_on_time_receipt_has_no_late_replacement_or_rejection_notes():
    plain = dict(RECEIPT, late=False, replaces=[], rejected_rows=[], warnings=[], wrong_mailbox_note="")
    composed = compose("receipt", plain)

    for absent in ("逾期", "替换此前", "未能登记", "请留意", "chuyoujiao@163.com"):
        assert absent not in composed.text and absent not in composed.html
    assert "1850" in composed.text


def test_receipt_of_a_school_group_lists_every_school():
    second = dict(RECEIPT["rows"][0], school="安溪县东门小学分校", enrolled=640, participating=600,
                  two_plus_n=False, services=[], n=None, row_number=6)
    group = dict(RECEIPT, school_names=["安溪县东门小学", "安溪县东门小学分校"], rows=[RECEIPT["rows"][0], second])
    composed = compose("receipt", group)

    assert composed.subject.startswith("回执：安溪县东门小学、安溪县东门小学分校2022年10月")
    assert "640" in composed.text and "640" in composed.html
    assert "是否落实“2+N”模式：否" in composed.text


def test_rejection_subject_and_greeting_without_a_known_school():
    anonymous = dict(REJECTION, school_names=[], month_label="", deadline_label="")
    composed = compose("rejection", anonymous)

    assert composed.subject == "退回：课后服务汇总表未能登记，请修改后重新发送"
    assert composed.text.startswith("老师：")
    assert "已预填" not in composed.text and "截止时间" not in composed.text


def test_school_written_text_is_escaped_in_html_only():
    hostile = copy.deepcopy(RECEIPT)
    hostile["rejected_rows"][0]["school_as_written"] = '<script>alert("x")</script>'
    composed = compose("receipt", hostile)

    assert "<script>" not in composed.html
    assert "&lt;script&gt;" in composed.html
    assert '<script>alert("x")</script>' in composed.text


def test_a_hostile_subject_collapses_to_one_line():
    context = dict(QUARANTINE, sender="x@qq.com\r\nBcc: all@example.com")

    assert "\n" not in compose("operator_quarantine", context).subject


@pytest.mark.parametrize("kind", ["summary_of_nothing", "../receipt", "", "Receipt", None])
def test_unknown_kinds_are_refused(kind):
    with pytest.raises(ValueError):
        compose(kind, {})


@pytest.mark.parametrize("kind", KINDS)
def test_written_to_files_an_email_is_the_same_as_composed(kind):
    text, html = io.StringIO(), io.StringIO()
    subject = compose_to(kind, CONTEXTS[kind], text, html)

    composed = compose(kind, CONTEXTS[kind])
    assert subject == composed.subject and text.getvalue() == composed.text and html.getvalue() == composed.html


def _tidied_at_once(text: str) -> str:
    """What the text part was before it was tidied as it is rendered: the whole string at once."""
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


# Every line end str.splitlines() knows, white space that is not one, and text on both sides.
_PIECES = st.lists(st.text(alphabet=list("a中 \t\u3000\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=6),
                   max_size=40)


@given(_PIECES, st.integers(min_value=1, max_value=4))
def test_the_text_is_tidied_piece_by_piece_as_it_was_at_once(pieces, batch):
    # Small batches: a line end split between two batches ("\r" | "\n") is met often.
    assert "".join(_tidy(pieces, batch)) == _tidied_at_once("".join(pieces))
