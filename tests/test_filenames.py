"""Attachment names and header text as real Chinese mail clients write them."""

import base64
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbot.mail.headers import (
    decode_filename_params,
    decode_header_text,
    split_header_params,
)

NAME = "安溪县北门小学2022年10月课后服务开展情况汇总表.xlsx"


def raw(data: bytes) -> str:
    """A header value as the stdlib parser hands it over: 8-bit bytes surrogate-escaped."""
    return data.decode("ascii", "surrogateescape")


def b_word(data: bytes, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?="


def q_word(data: bytes, charset: str) -> str:
    encoded = "".join(
        "_" if byte == 0x20 else chr(byte) if chr(byte).isascii() and chr(byte).isalnum() else f"={byte:02X}"
        for byte in data
    )
    return f"=?{charset}?Q?{encoded}?="


def test_163_quoted_gbk_encoded_word():
    params = {"filename": b_word(NAME.encode("gbk"), "GBK")}
    assert decode_filename_params(params) == NAME


def test_gb2312_label_with_gbk_only_characters():
    # 镕 and 堃 are not in GB2312, but Foxmail and others still label GBK bytes "gb2312".
    name = "朱镕堃的报表.xls"
    assert decode_filename_params({"filename": b_word(name.encode("gbk"), "gb2312")}) == name


def test_outlook_rfc2231_with_rfc2047_name():
    disposition = {"filename*": "utf-8''" + quote_from_bytes(NAME.encode("utf-8"))}
    content_type = {"name": b_word(NAME.encode("utf-8"), "utf-8")}
    assert decode_filename_params(disposition, content_type) == NAME


def test_iphone_continuations_split_inside_a_character():
    encoded = quote_from_bytes(NAME.encode("utf-8"))
    cut = len("%E5%AE")  # 安 is %E5%AE%89: the cut falls inside it
    params = {"filename*0*": "utf-8''" + encoded[:cut], "filename*1*": encoded[cut:]}
    assert decode_filename_params(params) == NAME


def test_rfc2231_gbk_charset():
    params = {"filename*": "gbk'zh-cn'" + quote_from_bytes(NAME.encode("gbk"))}
    assert decode_filename_params(params) == NAME


def test_thunderbird_raw_utf8_and_raw_gbk_bytes():
    assert decode_filename_params({"filename": raw(NAME.encode("utf-8"))}) == NAME
    assert decode_filename_params({"filename": raw(NAME.encode("gbk"))}) == NAME


def test_prefers_the_parameter_that_decodes_cleanly():
    broken = {"filename": raw(b"\xff\xfe\xfd.xlsx")}
    good = {"name": b_word(NAME.encode("gbk"), "gbk")}
    assert decode_filename_params(broken, good) == NAME


def test_path_components_are_dropped():
    assert decode_filename_params({"filename": "C:\\Users\\admin\\..\\表.xlsx"}) == "表.xlsx"
    assert decode_filename_params({"filename": "../../etc/passwd"}) == "passwd"
    assert decode_filename_params({"filename": "..\\"}) is None


def test_missing_or_empty_names_give_none():
    assert decode_filename_params({}) is None
    assert decode_filename_params({"filename": "  "}, {"name": ""}) is None


def test_split_header_params_tolerates_quotes_and_semicolons():
    main, params = split_header_params(
        'Attachment; FileName="a;b \\"c\\".xlsx"; size=12; filename=second'
    )
    assert main == "attachment"
    assert params == {"filename": 'a;b "c".xlsx', "size": "12"}
    assert split_header_params('attachment; filename="unterminated.xlsx')[1] == {
        "filename": "unterminated.xlsx"
    }


def test_header_text_folded_and_split_encoded_words():
    subject = "北门小学10月份课后服务开展情况汇总表"
    data = subject.encode("gbk")
    # Foxmail folds long subjects into several words; some clients cut inside a character.
    value = b_word(data[:7], "gb2312") + "\r\n\t" + b_word(data[7:], "gb2312")
    assert decode_header_text(value) == subject
    assert decode_header_text("Re: " + q_word("汇总表".encode("utf-8"), "utf-8")) == "Re: 汇总表"


def test_header_text_raw_8bit():
    assert decode_header_text(raw("汇总表 10月".encode("gbk"))) == "汇总表 10月"
    assert decode_header_text(raw("汇总表 10月".encode("utf-8"))) == "汇总表 10月"


# --- properties: any name survives every encoding clients use ---------------------------------

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
    min_size=1,
    max_size=40,
).filter(lambda name: name == name.strip() and name not in (".", ".."))


def split_bytes(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[start:end] for start, end in zip(points, points[1:])] or [b""]


@given(
    name=names,
    charset=st.sampled_from(["utf-8", "gb18030"]),
    use_base64=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=4),
    separator=st.sampled_from([" ", "\r\n ", "\t", ""]),
)
def test_rfc2047_names_round_trip(name, charset, use_base64, cuts, separator):
    data = name.encode(charset)
    encode = b_word if use_base64 else q_word
    value = separator.join(encode(chunk, charset) for chunk in split_bytes(data, cuts))
    assert decode_filename_params({"filename": value}) == name
    _, params = split_header_params('attachment;\r\n filename="' + value + '"')
    assert decode_filename_params(params) == name


@given(
    name=names,
    charset=st.sampled_from(["utf-8", "gb18030"]),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=5),
)
def test_rfc2231_names_round_trip(name, charset, cuts):
    encoded = quote_from_bytes(name.encode(charset), safe="")
    # Split on whole %XX escapes, anywhere, also between the bytes of one character.
    escapes = [encoded[i : i + 3] if encoded[i] == "%" else encoded[i] for i in _escape_starts(encoded)]
    points = sorted({cut % (len(escapes) + 1) for cut in cuts} | {0, len(escapes)})
    sections = ["".join(escapes[start:end]) for start, end in zip(points, points[1:])] or [""]
    params = {f"filename*{index}*": section for index, section in enumerate(sections)}
    params["filename*0*"] = f"{charset}''" + params["filename*0*"]
    assert decode_filename_params(params) == name
    assert decode_filename_params({"filename*": f"{charset}'zh'{encoded}"}) == name


def _escape_starts(encoded: str) -> list[int]:
    starts, index = [], 0
    while index < len(encoded):
        starts.append(index)
        index += 3 if encoded[index] == "%" else 1
    return starts


# --- names as clients really break them (issue 10) ------------------------------------------


def test_rfc2231_value_written_as_raw_utf8_instead_of_escapes():
    # filename*=UTF-8''汇总表.xlsx with the bytes themselves: the stdlib hands them over escaped.
    value = raw("UTF-8''汇总表.xlsx".encode("utf-8"))
    assert decode_filename_params({"filename*": value}) == "汇总表.xlsx"
    sections = {"filename*0*": raw("UTF-8''汇总".encode("utf-8")), "filename*1*": "%E8%A1%A8.xlsx"}
    assert decode_filename_params(sections) == "汇总表.xlsx"


def test_a_name_that_cannot_be_decoded_costs_only_that_name():
    # An absurd charset label or a lone surrogate in a value: the other form of the name still wins.
    params = {"filename*": "x-\udcff-bogus''%ZZ\udcff", "filename": "汇总表.xlsx"}
    assert decode_filename_params(params) == "汇总表.xlsx"


@pytest.mark.parametrize("name", ["Résumé.xlsx", "Übersicht März.xls", "Grüße.xlsx", "café menu.csv"])
def test_undeclared_latin1_name_is_not_read_as_gbk(name):
    assert decode_filename_params({"filename": raw(name.encode("latin-1"))}) == name


@pytest.mark.parametrize("name", [NAME, "安溪县官桥镇垵岭小学.xlsx", "凤华小学10月课后服务汇总表.xls"])
def test_undeclared_gbk_name_stays_gbk(name):
    assert decode_filename_params({"filename": raw(name.encode("gbk"))}) == name
