"""has_candidate and part names from BODYSTRUCTURE tuples, as imapclient parses Dovecot's answers.

CAPTURED holds what Dovecot 2.3 returned for the sample messages (APPEND each
samples/cases/*/message.eml, then FETCH BODYSTRUCTURE); note that Dovecot passes MIME parameters
through undecoded, merges RFC 2231 continuations into one `filename*`, and leaves the body of a
message/rfc822 part in imapclient's raw nested-tuple form.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.mail.bodystructure import has_candidate, part_names, parts, raw_parameters
from mailbot.mail.headers import decode_encoded_words, decode_param


def decoded(params, name: str) -> str | None:
    """One parameter of a BODYSTRUCTURE, as the description reads it: the pairs collected by
    raw_parameters, the value decoded by decode_param (RFC 2231, continuations, RFC 2047)."""
    value = decode_param(raw_parameters(params), name)
    return value[0] if value is not None else None

CAPTURED = {
    '001-163-webmail-xlsx': ([([(b'text', b'plain', (b'charset', b'GBK'), None, None, b'base64', 116, 2, None, None, None, None),
            (b'text', b'html', (b'charset', b'GBK'), None, None, b'base64', 374, 5, None, None, None, None)],
           b'alternative', (b'boundary', b'----=_Part_639785_489341168.1666318532000'), None, None, None),
          (b'application', b'vnd.openxmlformats-officedocument.spreadsheetml.sheet',
           (b'name', b'=?GBK?B?sLLPqs/YsbHDxdCh0acyMDIyxOoxMNTCv86687f+zvG/qtW5x+m/9rvj19yx7S54bHN4?='), None, None,
           b'base64', 8892, None,
           (b'attachment',
            (b'filename', b'=?GBK?B?sLLPqs/YsbHDxdCh0acyMDIyxOoxMNTCv86687f+zvG/qtW5x+m/9rvj19yx7S54bHN4?=')),
           None, None)],
         b'mixed', (b'boundary', b'----=_Part_274514_983339543.1666318532000'), None, None, None),
    '002-qq-octet-stream-modes': ([([(b'text', b'plain', (b'charset', b'gb18030'), None, None, b'base64', 96, 2, None, None, None, None),
            (b'text', b'html', (b'charset', b'gb18030'), None, None, b'base64', 234, 3, None, None, None, None)],
           b'alternative', (b'boundary', b'----=_NextPart_63510B49_0D88A871_B564EA08'), None, None, None),
          (b'application', b'octet-stream',
           (b'charset', b'gb18030', b'name', b'=?gb18030?B?t++7qtCh0acxMNTCv86687f+zvG749fcse0ueGxzeA==?='), None,
           None, b'base64', 9586, None,
           (b'attachment', (b'filename', b'=?gb18030?B?t++7qtCh0acxMNTCv86687f+zvG749fcse0ueGxzeA==?=')), None,
           None)],
         b'mixed', (b'boundary', b'----=_NextPart_63510B49_CBE20EE2_50DB78EA'), None, None, None),
    '004-outlook-rfc2231-two-row-header': ([([([(b'text', b'plain', (b'charset', b'utf-8'), None, None, b'base64', 182, 3, None, None, None, None),
              (b'text', b'html', (b'charset', b'utf-8'), None, None, b'quoted-printable', 1332, 18, None, None, None,
               None)],
             b'alternative', (b'boundary', b'----=_NextPart_000_0003_01D8E388.C995C8AD'), None, None, None),
            (b'image', b'png', (b'name', b'image001.png'), b'<image001.png@01D8E388.C995C8AD>', None, b'base64', 510,
             None, None, None, None)],
           b'related', (b'boundary', b'----=_NextPart_000_0002_01D8E388.C995C8AD'), None, None, None),
          (b'application', b'vnd.openxmlformats-officedocument.spreadsheetml.sheet',
           (b'name', b'=?utf-8?B?5Z+O5Y2X5Lit5a2mMTDmnIjku73or77lkI7mnI3liqHlvIDlsZXmg4XlhrXmsYfmgLvooagueGxzeA==?='),
           None, None, b'base64', 8976, None,
           (b'attachment',
            (b'filename*',
             b"utf-8''%E5%9F%8E%E5%8D%97%E4%B8%AD%E5%AD%A610%E6%9C%88%E4%BB%BD%E8%AF%BE%E5%90%8E%E6%9C%8D%E5%8A%A1%"
             b'E5%BC%80%E5%B1%95%E6%83%85%E5%86%B5%E6%B1%87%E6%80%BB%E8%A1%A8.xlsx')),
           None, None)],
         b'mixed', (b'boundary', b'----=_NextPart_000_0001_01D8E388.C995C8AD'), None, (b'zh-cn',), None),
    '005-iphone-rfc2231-continuations': ([(b'text', b'plain', (b'charset', b'utf-8'), None, None, b'base64', 104, 2, None, None, None, None),
          (b'application', b'vnd.openxmlformats-officedocument.spreadsheetml.sheet',
           (b'x-unix-mode', b'0644', b'name*',
            b"utf-8''%E5%AE%89%E6%BA%AA%E5%8E%BF%E7%8E%89%E6%B9%96%E5%B0%8F%E5%AD%A6%E8%AF%BE%E5%90%8E%E6%9C%8D%E5"
            b'%8A%A1%E5%BC%80%E5%B1%95%E6%83%85%E5%86%B5%E6%B1%87%E6%80%BB%E8%A1%A8%EF%BC%88%E5%B7%B2%E5%A1%AB%EF%'
            b'BC%89.xlsx'),
           None, None, b'base64', 9920, None,
           (b'attachment',
            (b'filename*',
             b"utf-8''%E5%AE%89%E6%BA%AA%E5%8E%BF%E7%8E%89%E6%B9%96%E5%B0%8F%E5%AD%A6%E8%AF%BE%E5%90%8E%E6%9C%8D%E5"
             b'%8A%A1%E5%BC%80%E5%B1%95%E6%83%85%E5%86%B5%E6%B1%87%E6%80%BB%E8%A1%A8%EF%BC%88%E5%B7%B2%E5%A1%AB%EF%'
             b'BC%89.xlsx')),
           None, None),
          (b'text', b'plain', (b'charset', b'utf-8'), None, None, b'base64', 34, 1, None, None, None, None)],
         b'mixed', (b'boundary', b'Apple-Mail-45580F59-EE62-BD7A-C498-B7701E229DD1'), None, None, None),
    '006-thunderbird-raw-utf8-docx': ([(b'text', b'plain', (b'charset', b'UTF-8', b'format', b'flowed'), None, None, b'8bit', 144, 6, None, None,
           None, None),
          (b'application', b'vnd.openxmlformats-officedocument.wordprocessingml.document',
           (b'name',
            b'\xe7\x8e\x89\xe6\xb9\x96\xe4\xb8\xad\xe5\xad\xa610\xe6\x9c\x88\xe4\xbb\xbd\xe8\xaf\xbe\xe5'
            b'\x90\x8e\xe6\x9c\x8d\xe5\x8a\xa1\xe5\xbc\x80\xe5\xb1\x95\xe6\x83\x85\xe5\x86\xb5\xe6\xb1\x87\xe6'
            b'\x80\xbb\xe8\xa1\xa8.docx'),
           None, None, b'base64', 49236, None,
           (b'attachment',
            (b'filename',
             b'\xe7\x8e\x89\xe6\xb9\x96\xe4\xb8\xad\xe5\xad\xa610\xe6\x9c\x88\xe4\xbb\xbd\xe8\xaf\xbe\xe5'
             b'\x90\x8e\xe6\x9c\x8d\xe5\x8a\xa1\xe5\xbc\x80\xe5\xb1\x95\xe6\x83\x85\xe5\x86\xb5\xe6\xb1\x87\xe6'
             b'\x80\xbb\xe8\xa1\xa8.docx')),
           None, None)],
         b'mixed', (b'boundary', b'------------2SJdkAKPEDJ0kcPn9rUJa4ly'), None, (b'zh-CN',), None),
    '007-163-forward-as-attachment': ([([(b'text', b'plain', (b'charset', b'GBK'), None, None, b'base64', 108, 2, None, None, None, None),
            (b'text', b'html', (b'charset', b'GBK'), None, None, b'base64', 366, 5, None, None, None, None)],
           b'alternative', (b'boundary', b'----=_Part_674378_656996261.1666483517000'), None, None, None),
          (b'message', b'rfc822', (b'name', b'=?GBK?B?s8fEz8q10enQodGnMTDUwr/OuvO3/s7xu+PX3LHtLmVtbA==?='), None,
           None, b'7bit', 10965,
           (b'Sat, 22 Oct 2022 17:41:03 +0800', b'=?gb18030?B?s8fEz8q10enQodGnMTDUwr/OuvO3/s7xu+PX3LHt?=',
            ((b'=?gb18030?B?0e7K57fS?=', None, b'2541097736', b'qq.com'),),
            ((b'=?gb18030?B?0e7K57fS?=', None, b'2541097736', b'qq.com'),),
            ((b'=?gb18030?B?0e7K57fS?=', None, b'2541097736', b'qq.com'),),
            ((b'cnsx_jwc@126.com', None, b'cnsx_jwc', b'126.com'),), None, None, None,
            b'<tencent_B75F997008F228CB0B04C7BB73F02AAA652B@qq.com>'),
           (((b'text', b'plain', (b'charset', b'gb18030'), None, None, b'base64', 88, 2, None, None, None, None),
             (b'text', b'html', (b'charset', b'gb18030'), None, None, b'base64', 198, 3, None, None, None, None),
             b'alternative', (b'boundary', b'----=_NextPart_6353BAAF_7677F95F_8912099E'), None, None, None),
            (b'application', b'octet-stream',
             (b'charset', b'gb18030', b'name', b'=?gb18030?B?s8fEz8q10enQodGnMTDUwr/OuvO3/s7xu+PX3LHtLnhsc3g=?='),
             None, None, b'base64', 8902, None,
             (b'attachment', (b'filename', b'=?gb18030?B?s8fEz8q10enQodGnMTDUwr/OuvO3/s7xu+PX3LHtLnhsc3g=?=')), None,
             None),
            b'mixed', (b'boundary', b'----=_NextPart_6353BAAF_FA5701BE_BDABCDCF'), None, None, None),
           172, None, (b'attachment', (b'filename', b'=?GBK?B?s8fEz8q10enQodGnMTDUwr/OuvO3/s7xu+PX3LHtLmVtbA==?=')),
           None, None)],
         b'mixed', (b'boundary', b'----=_Part_153296_965034529.1666483517000'), None, None, None),
    '008-qq-big-attachment-link': ([(b'text', b'plain', (b'charset', b'gb18030'), None, None, b'base64', 288, 4, None, None, None, None),
          (b'text', b'html', (b'charset', b'gb18030'), None, None, b'base64', 2320, 30, None, None, None, None)],
         b'alternative', (b'boundary', b'----=_NextPart_63525632_C352C2E5_50E70550'), None, None, None),
    '010-auto-reply-with-table': ([([(b'text', b'plain', (b'charset', b'GBK'), None, None, b'base64', 140, 2, None, None, None, None),
            (b'text', b'html', (b'charset', b'GBK'), None, None, b'base64', 346, 5, None, None, None, None)],
           b'alternative', (b'boundary', b'----=_Part_927688_652810888.1666227641000'), None, None, None),
          (b'application', b'vnd.openxmlformats-officedocument.spreadsheetml.sheet',
           (b'name', b'=?GBK?B?wfq98tbQ0ac51MK/zrrzt/7O8bvj19yx7S54bHN4?='), None, None, b'base64', 8766, None,
           (b'attachment', (b'filename', b'=?GBK?B?wfq98tbQ0ac51MK/zrrzt/7O8bvj19yx7S54bHN4?=')), None, None)],
         b'mixed', (b'boundary', b'----=_Part_750112_743918184.1666227641000'), None, None, None),
    '013-zip-cp936-december-in-january': ([([(b'text', b'plain', (b'charset', b'GBK'), None, None, b'base64', 100, 2, None, None, None, None),
            (b'text', b'html', (b'charset', b'GBK'), None, None, b'base64', 346, 5, None, None, None, None)],
           b'alternative', (b'boundary', b'----=_Part_446910_628194425.1672885333000'), None, None, None),
          (b'application', b'x-zip-compressed', (b'name', b'=?GBK?B?z6q2q9bQ0ae/zrrzt/7O8bvj19yx7S56aXA=?='), None,
           None, b'base64', 8142, None,
           (b'attachment', (b'filename', b'=?GBK?B?z6q2q9bQ0ae/zrrzt/7O8bvj19yx7S56aXA=?=')), None, None)],
         b'mixed', (b'boundary', b'----=_Part_645281_441892348.1672885333000'), None, None, None),
    '015-reply-without-attachment': ([(b'text', b'plain', (b'charset', b'GBK'), None, None, b'base64', 338, 5, None, None, None, None),
          (b'text', b'html', (b'charset', b'GBK'), None, None, b'base64', 646, 9, None, None, None, None)],
         b'alternative', (b'boundary', b'----=_Part_703979_693904142.1666231950000'), None, None, None),
    '016-public-complaint': ([(b'text', b'plain', (b'charset', b'GBK'), None, None, b'base64', 218, 3, None, None, None, None),
          (b'text', b'html', (b'charset', b'GBK'), None, None, b'base64', 460, 6, None, None, None, None)],
         b'alternative', (b'boundary', b'----=_Part_419042_580640539.1666188251000'), None, None, None),
    '017-csv-gbk': ([([(b'text', b'plain', (b'charset', b'gb2312'), None, None, b'base64', 108, 2, None, None, None, None),
            (b'text', b'html', (b'charset', b'gb2312'), None, None, b'quoted-printable', 536, 7, None, None, None,
             None)],
           b'alternative', (b'boundary', b'----=_002_NextPart774739773629_=----'), None, None, None),
          (b'application', b'vnd.ms-excel',
           (b'name', b'=?gb2312?B?sbHJvdbQ0acxMNTCt92/zrrzt/7O8b+q1bnH6b/2LmNzdg==?='), None, None, b'base64', 694,
           None, (b'attachment', (b'filename', b'=?gb2312?B?sbHJvdbQ0acxMNTCt92/zrrzt/7O8b+q1bnH6b/2LmNzdg==?=')),
           None, None)],
         b'mixed', (b'boundary', b'----=_001_NextPart088552176055_=----'), None, None, None),
}


def test_sample_attachment_names_are_decoded_in_every_form():
    names = {case: part_names(structure) for case, structure in CAPTURED.items()}
    assert names["001-163-webmail-xlsx"] == ["安溪县北门小学2022年10月课后服务开展情况汇总表.xlsx"]  # RFC 2047 GBK
    assert names["002-qq-octet-stream-modes"] == ["凤华小学10月课后服务汇总表.xlsx"]  # gb18030
    assert names["004-outlook-rfc2231-two-row-header"] == ["image001.png", "城南中学10月份课后服务开展情况汇总表.xlsx"]
    assert names["005-iphone-rfc2231-continuations"] == ["安溪县玉湖小学课后服务开展情况汇总表（已填）.xlsx"]
    assert names["006-thunderbird-raw-utf8-docx"] == ["玉湖中学10月份课后服务开展情况汇总表.docx"]  # raw 8-bit
    assert names["007-163-forward-as-attachment"] == ["城南实验小学10月课后服务汇总表.eml", "城南实验小学10月课后服务汇总表.xlsx"]
    assert names["017-csv-gbk"] == ["北山中学10月份课后服务开展情况.csv"]


def test_candidates_among_the_samples():
    without = {case for case, structure in CAPTURED.items() if not has_candidate(structure)}
    assert without == {"008-qq-big-attachment-link", "015-reply-without-attachment", "016-public-complaint"}


def test_parts_of_a_forwarded_message_are_marked_as_inside_it():
    found = parts(CAPTURED["007-163-forward-as-attachment"])
    rfc822 = [p for p in found if p.content_type == "message/rfc822"]
    inner = [p for p in found if p.in_attached_message]
    assert len(rfc822) == 1 and rfc822[0].disposition == "attachment" and not rfc822[0].in_attached_message
    assert [p.content_type for p in inner] == ["text/plain", "text/html", "application/octet-stream"]
    assert inner[-1].size == 8902


def test_inline_image_is_reported_with_its_disposition_and_size():
    image, sheet = [p for p in parts(CAPTURED["004-outlook-rfc2231-two-row-header"]) if p.filename]
    assert (image.content_type, image.disposition, image.size) == ("image/png", None, 510)
    assert (sheet.disposition, sheet.size) == ("attachment", 8976)


def leaf(main: bytes, sub: bytes, params=None, disposition=None) -> tuple:
    return (main, sub, params, None, None, b"base64", 100, None, disposition, None, None)


def text_leaf(sub: bytes = b"plain", params=(b"charset", b"utf-8")) -> tuple:
    return (b"text", sub, params, None, None, b"base64", 100, 2, None, None, None, None)


def test_what_counts_as_a_candidate():
    assert has_candidate(leaf(b"application", b"octet-stream"))  # unnamed, still maybe a table
    assert has_candidate(text_leaf(b"csv"))
    assert has_candidate(text_leaf(b"plain", (b"name", b"data.txt")))  # any named part
    assert not has_candidate(leaf(b"image", b"png"))  # unnamed inline image
    assert not has_candidate(([text_leaf(), text_leaf(b"html")], b"alternative", None, None, None, None))


def test_unmerged_rfc2231_continuations_are_joined():
    # Servers other than Dovecot pass filename*0*/filename*1* through as they are, in any order.
    params = (b"filename*1*", b"%A6%E8%AF%BE.xlsx", b"filename*0*", b"utf-8''%E5%B0%8F%E5%AD")
    assert decoded(params, "filename") == "小学课.xlsx"
    assert decoded((b"name*0", b"part1", b"name*1", b"-part2.xls"), "name") == "part1-part2.xls"


def test_rfc2231_wins_over_the_plain_fallback():
    params = (b"filename", b"fallback.xlsx", b"filename*", b"gbk''%B1%ED.xlsx")
    assert decoded(params, "filename") == "表.xlsx"


def test_encoded_words_split_inside_a_character_are_joined():
    # "汇总" in GBK is BB E3 D7 DC; a client cut it between the words after byte 3.
    assert decode_encoded_words("=?GBK?B?u+PX?= =?GBK?B?3A==?=.xls") == "汇总.xls"
    assert decode_encoded_words("=?utf-8?Q?=E8=A1=A8_1?=.csv") == "表 1.csv"
    assert decode_encoded_words("plain name.xlsx") == "plain name.xlsx"


def test_broken_encodings_degrade_to_readable_text():
    assert decode_encoded_words("=?x-unknown?B?YWJj?=") == "abc"
    assert decode_encoded_words("=?utf-8?B?###?=") in ("", "=?utf-8?B?###?=")
    assert decoded((b"filename*", b"no-quotes-%ZZ"), "filename") == "no-quotes-%ZZ"
    assert raw_parameters((b"name", None, 7, b"x", b"name")) == {}


def test_nonsense_is_not_a_candidate():
    for value in (None, (), [], b"", 42, (None,), ((),), ([], b"mixed"), (b"text",), ((b"a", b"b"), 3)):
        assert has_candidate(value) is False
        assert isinstance(part_names(value), list)


atoms = st.one_of(st.none(), st.integers(), st.binary(max_size=20),
                  st.sampled_from([b"text", b"application", b"message", b"rfc822", b"name", b"filename*",
                                   b"=?gbk?B?sbE=?=", b"utf-8''%E5", b"attachment"]))
structures = st.recursive(atoms, lambda inner: st.one_of(st.lists(inner, max_size=12).map(tuple),
                                                         st.lists(inner, max_size=4)), max_leaves=60)


@settings(max_examples=200)
@given(structures)
def test_hostile_structures_never_crash(structure):
    assert has_candidate(structure) in (True, False)
    assert all(isinstance(name, str) and name for name in part_names(structure))


# A blank value is no name, as in the downloaded message (both use mailbot.mail.headers).
@given(st.text(max_size=40).filter(str.strip), st.sampled_from(["utf-8", "gbk", "gb18030", "big5"]))
def test_rfc2231_round_trip(name, charset):
    try:
        encoded = name.encode(charset)
    except UnicodeEncodeError:
        return
    from urllib.parse import quote_from_bytes
    value = f"{charset}''{quote_from_bytes(encoded)}".encode()
    assert decoded((b"filename*", value), "filename") == name


@given(st.text(alphabet=st.sampled_from(list("=?BbQqgk8utf-_ /'%*E5AZaz0\u6c47\x00")), max_size=80))
def test_any_encoded_word_soup_decodes_to_text(text):
    assert isinstance(decode_encoded_words(text), str)
    params = (b"filename*", text.encode("utf-8"), b"name*0*", text.encode())
    assert all(decoded(params, name) is None or isinstance(decoded(params, name), str) for name in ("filename", "name"))


def test_names_decode_as_in_the_downloaded_message():
    # One decoder for both (mailbot.mail.headers): a raw 8-bit RFC 2231 value, an undeclared
    # Latin-1 name and split GBK words give what parse_message gives.
    from mailbot.mail.headers import decode_filename_params
    cases = [(b"filename*", "UTF-8''汇总表.xlsx".encode()), (b"filename", "Résumé.xlsx".encode("latin-1")),
             (b"filename", b"=?GBK?B?u+PX?= =?GBK?B?3A==?=.xls")]
    for key, value in cases:
        structure = (b"application", b"octet-stream", None, None, None, b"base64", 10, None,
                     (b"attachment", (key, value)), None, None)
        (part,) = parts(structure)
        expected = decode_filename_params({key.decode(): value.decode("utf-8", "surrogateescape")})
        assert part.filename == expected and part.filename in ("汇总表.xlsx", "Résumé.xlsx", "汇总.xls")
