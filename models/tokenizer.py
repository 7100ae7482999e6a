"""The GPT-2 BPE tokenizer, built offline with tiktoken from the BPE file vendored here."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import tiktoken

BPE_FILE = "gpt2.tiktoken"
BPE_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
EOT = "<|endoftext|>"
EOT_ID = 50256
TOKENIZER_NAME = "gpt2"
# GPT-2's original pre-tokenisation regex; works on every tiktoken version.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


# How a model's text is cased before tokenising, per checkpoint: "keep" (GPT-2 and older
# checkpoints) or "lower" (the bundled model: most of its labeled mail comes lower-cased, and
# BPE gives " Free" and " free" unrelated ids, so with case kept what it learnt there would not
# reach mixed-case mail).
TEXT_CASES = ("keep", "lower")


def apply_case(texts: list[str], text_case: str) -> list[str]:
    """The texts as a model with this `text_case` reads them."""
    if text_case not in TEXT_CASES:
        raise ValueError(f"unknown text case {text_case!r}; known: {', '.join(TEXT_CASES)}")
    return [t.lower() for t in texts] if text_case == "lower" else texts


# Whether a model reads the sender lines (`From`, `Reply-To`) of the text
# `mailfilter.message.to_text` makes, per checkpoint: "keep" (GPT-2, older checkpoints and the
# bundled model) or "drop" (only one of the bundled corpora has senders, so their mere presence
# tells a model which corpus a message came from; measured, the bundled model keeps them:
# docs/MODEL.md, "Sender lines").
TEXT_SENDERS = ("keep", "drop")
SENDER_PREFIXES = ("From: ", "Reply-To: ")  # to_text's header block opens with these, in order


def drop_sender(text: str) -> str:
    """The text without the `From:`/`Reply-To:` lines of its header block (the block before the
    first blank line; `to_text` puts them first, so a text not opening with one has none)."""
    if not text.startswith(SENDER_PREFIXES):
        return text
    head, sep, body = text.partition("\n\n")
    kept = [line for line in head.split("\n") if not line.startswith(SENDER_PREFIXES)]
    return "\n".join(kept) + sep + body if kept else body


# How a model's text is spaced around punctuation, per checkpoint: "keep" (GPT-2 and older
# checkpoints) or "split" (a space on each side of every punctuation mark, runs of spaces made
# one: the form Enron-Spam and Ling-Spam text comes in, `thanks , see you .`; BPE gives "," and
# " ," unrelated ids, so with punctuation kept what a model learnt from those corpora would
# reach mail as people write it only where the spacing happens to agree).
TEXT_PUNCTS = ("keep", "split")
_PUNCT = re.compile(r"[^\w\s]|_")  # neither a letter, a digit nor white space


def split_punct(text: str) -> str:
    """The text with every punctuation mark spaced apart from its neighbours, the other white
    space of each line made single spaces, line breaks kept; splitting twice changes nothing."""
    spaced = _PUNCT.sub(r" \g<0> ", text)
    return "\n".join(" ".join(line.split()) for line in spaced.split("\n"))


@dataclass(frozen=True)
class TextForm:
    """How a checkpoint reads `to_text`'s text: its case, whether it sees the sender lines and
    how punctuation is spaced. The default is the text as it is (GPT-2 and checkpoints older
    than these fields)."""

    case: str = "keep"  # TEXT_CASES
    sender: str = "keep"  # TEXT_SENDERS
    punct: str = "keep"  # TEXT_PUNCTS

    def __post_init__(self) -> None:
        for what, value, known in (("case", self.case, TEXT_CASES),
                                   ("sender", self.sender, TEXT_SENDERS),
                                   ("punct", self.punct, TEXT_PUNCTS)):
            if value not in known:
                raise ValueError(f"unknown text {what} {value!r}; known: {', '.join(known)}")

    def apply(self, texts: list[str]) -> list[str]:
        """The texts as a model of this form reads them (sender lines are found before the
        punctuation is split, which would change their `From: ` prefix)."""
        if self.sender == "drop":
            texts = [drop_sender(t) for t in texts]
        if self.punct == "split":
            texts = [split_punct(t) for t in texts]
        return apply_case(texts, self.case)

    def metadata(self) -> dict[str, str]:
        """The form as checkpoint fields (`text_case`, `text_sender`, `text_punct`)."""
        return {"text_case": self.case, "text_sender": self.sender, "text_punct": self.punct}


AS_IS = TextForm()  # the text as `to_text` makes it


class TokenizerError(Exception):
    """The vendored BPE file is missing or does not match its pinned hash."""


def _parse_ranks(data: bytes) -> dict[bytes, int]:
    import base64

    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@lru_cache(maxsize=1)
def get_tokenizer() -> tiktoken.Encoding:
    """The GPT-2 encoding; reads the vendored file, checks its sha256, never touches the network."""
    try:
        data = resources.files("models").joinpath("data", BPE_FILE).read_bytes()
    except OSError as e:
        raise TokenizerError(f"cannot read the vendored GPT-2 BPE file: {e}") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != BPE_SHA256:
        raise TokenizerError(f"GPT-2 BPE file hash mismatch: {digest} != {BPE_SHA256}")
    return tiktoken.Encoding(
        name=TOKENIZER_NAME,
        pat_str=GPT2_PATTERN,
        mergeable_ranks=_parse_ranks(data),
        special_tokens={EOT: EOT_ID},
        explicit_n_vocab=50257,
    )


def encode(text: str) -> list[int]:
    """Token ids for text; a literal `<|endoftext|>` in mail is encoded as ordinary text."""
    return get_tokenizer().encode_ordinary(text)


def encode_batch(texts: list[str]) -> list[list[int]]:
    """Token ids for many texts, using tiktoken's threads."""
    return get_tokenizer().encode_ordinary_batch(texts)


def decode(ids: list[int]) -> str:
    """Text for token ids (lossy on split UTF-8 sequences)."""
    return get_tokenizer().decode(ids)


HEAD_CHARS_PER_TOKEN = 8  # how far past max_tokens tokens' worth of text encode_batch_head reads


def encode_batch_head(texts: list[str], max_tokens: int) -> list[list[int]]:
    """`encode_batch(texts)` with each list cut to `max_tokens`, tokenising only a head of long
    texts (a 16,000-character message costs as much as its first 2,000 characters).

    Exact, not approximate: GPT-2's pre-tokenisation always splits before a space or newline
    that follows a non-space character (only a word's leading space joins a token), and BPE
    never merges across that split. So a head cut there encodes to a prefix of the full
    encoding. A head that yields fewer than `max_tokens` tokens is re-encoded whole. The texts
    are encoded one by one: on mail-sized texts tiktoken's batch threads cost more than they
    save, and they would contend with the model for the cores.
    """
    enc = get_tokenizer()
    out = []
    for text in texts:  # one by one: tiktoken's batch threads cost more than they save here
        head = _head(text, max_tokens * HEAD_CHARS_PER_TOKEN)
        ids = enc.encode_ordinary(head)
        if len(ids) < max_tokens and len(head) < len(text):
            ids = enc.encode_ordinary(text)
        out.append(ids[:max_tokens])
    return out


def _head(text: str, reach: int) -> str:
    """The longest prefix of at most `reach` characters that ends before a space or newline
    following a non-space character; the whole text when it is short or has no such place."""
    if len(text) <= reach:
        return text
    for p in range(reach, reach // 2, -1):
        if text[p] in " \n" and not text[p - 1].isspace():
            return text[:p]
    return text
