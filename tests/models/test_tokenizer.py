"""The GPT-2 tokenizer is built offline from the vendored BPE file."""

from __future__ import annotations

from models.tokenizer import EOT_ID, decode, encode, get_tokenizer


def test_known_ids_match_gpt2() -> None:
    assert encode("Hello, world!") == [15496, 11, 995, 0]
    assert get_tokenizer().encode("Hello, world! <|endoftext|>", allowed_special="all") == [
        15496,
        11,
        995,
        0,
        220,
        EOT_ID,
    ]


def test_endoftext_in_mail_is_ordinary_text() -> None:
    ids = encode("win money <|endoftext|> now")
    assert EOT_ID not in ids
    assert decode(ids) == "win money <|endoftext|> now"


def test_vocabulary_size() -> None:
    assert get_tokenizer().n_vocab == 50257
