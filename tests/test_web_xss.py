"""Hostile text in school names, service names, subjects and file names renders as text: in real
Chromium no dialog fires and no element is injected, on every page that shows them."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from builders import XLSX, submission, table_xlsx
from mailbot.db.models import Outbox
from support.configs import write_config
from support.web import Console, add_users, ingest_samples, login, served

SCRIPT = '<script>alert("school")</script>'
IMG = '<img src=x onerror=alert("img")>'
JS_LINK = 'javascript:alert("link")'
TEMPLATE = "{{ 7*7 }}{% if 1 %}yes{% endif %}"
SCHOOL = f"安溪县{IMG}{TEMPLATE}小学"
SERVICES = f'{SCRIPT}、{JS_LINK}、<a href="javascript:alert(1)">点我</a>'
SUBJECT = f"{SCRIPT}{TEMPLATE} {JS_LINK}"
FILE_NAME = f'{IMG}<script>alert("file")</script>.xlsx'


def hostile_console(tmp_path):
    extra = "\n".join(["[[school]]", f"name = {json.dumps(SCHOOL, ensure_ascii=False)}", 'level = "primary"',
                       'emails = ["xss@example.test"]', ""])
    console = Console(write_config(tmp_path, extra))
    ingest_samples(console.config, console.sessions)
    add_users(console.sessions)
    table = table_xlsx([[SCHOOL, 1, 1000, 900, "是", SERVICES]])
    accepted = submission("xss@example.test", "chuyoujiao@163.com", subject=SUBJECT,
                          attachments=[(FILE_NAME, table, XLSX)], message_id="xss-accepted")
    held = submission("stranger@example.test", "chuyoujiao@163.com", subject=SUBJECT,
                      attachments=[(FILE_NAME, table, XLSX)], message_id="xss-held")
    (tmp_path / "a.eml").write_bytes(accepted)
    (tmp_path / "b.eml").write_bytes(held)
    from mailbot.ingest.files import ingest_files
    results = list(ingest_files(console.config, console.sessions, console.clock, "chuyoujiao",
                                [tmp_path / "a.eml", tmp_path / "b.eml"], ["a.eml", "b.eml"]))
    assert [r.outcome for r in results] == ["accepted", "quarantined"], results
    with console.sessions.begin() as session:  # a server answer quoting the hostile text, on a failed receipt
        receipt = session.scalar(select(Outbox.id).where(Outbox.recipient == "xss@example.test"))
        session.execute(update(Outbox).where(Outbox.id == receipt).values(
            status="failed", last_error=f"550 {SCRIPT} {IMG}"))
    return console, receipt


INJECTED = """() => ({
  scripts: document.querySelectorAll('script').length,
  handlers: Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes).some(a => a.name.startsWith('on'))).length,
  images: document.querySelectorAll('img').length,
  jsLinks: Array.from(document.querySelectorAll('a[href]')).filter(a => a.href.trim().toLowerCase().startsWith('javascript:')).length,
  text: document.body.innerText,
})"""


def test_hostile_text_renders_as_text_in_chromium(tmp_path, browser):
    console, receipt = hostile_console(tmp_path)
    try:
        with console.sessions() as session:
            message_ids = [pk for (pk,) in session.execute(select(Outbox.message_pk).where(Outbox.id == receipt))]
        pages = {"/?month=2022-10": (SCHOOL, "本月概览"), f"/school?name={SCHOOL}": (SERVICES.split("、")[0], SCHOOL),
                 "/messages": (SUBJECT, ""), f"/messages/{message_ids[0]}": (FILE_NAME, SUBJECT),
                 "/outbox": (SCRIPT, ""), f"/outbox/{receipt}": (IMG, ""), "/quarantine": (SUBJECT, SCHOOL),
                 f"/outbox/{receipt}/html": (SCHOOL, "")}
        with served(console.app) as base:
            page = browser.new_page()
            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            login(page, base, "clerk")
            for path, (must_show, also) in pages.items():
                page.goto(base + path)
                found = page.evaluate(INJECTED)
                assert found["scripts"] == 0 and found["handlers"] == 0 and found["images"] == 0, (path, found)
                assert found["jsLinks"] == 0, path
                text = " ".join(found["text"].split())
                assert " ".join(must_show.split()) in text, (path, must_show)
                assert also in text
            # The held message's approve form and the school's void form carry the hostile names as values only.
            page.goto(base + "/quarantine")
            assert page.locator("select[name=school] option").first.get_attribute("value") == SCHOOL
            assert dialogs == []
    finally:
        console.close()
