"""The GPT-2 tokenizer is built offline from the vendored BPE file."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from models.tokenizer import EOT_ID, _head, decode, encode, encode_batch_head, get_tokenizer


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


_PIECES = st.sampled_from(
    [" ", "  ", "\n", "\n\n", "\t", "\u3000", "\xa0", "a", "word", "Spam", "'s", "'ll", "9", "42",
     "!", "?!", "...", "é", "日本", "\U0001f600", "http://x.example", "-", "_", "'"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_PIECES, max_size=400).map("".join), max_size=4),
       st.integers(min_value=1, max_value=64))  # fmt: skip
def test_encode_batch_head_is_exactly_the_head_of_the_full_encoding(
    texts: list[str], max_tokens: int
) -> None:
    assert encode_batch_head(texts, max_tokens) == [encode(t)[:max_tokens] for t in texts]


def test_encode_batch_head_reads_only_a_head_of_long_texts() -> None:
    text = "word " * 100_000
    assert _head(text, 8 * 16) == ("word " * 25)[:-1]  # cut before a space after a non-space
    assert encode_batch_head([text], 16) == [encode(text)[:16]]
    assert _head("x" * 10_000, 100) == "x" * 10_000  # no place to cut: encoded whole
