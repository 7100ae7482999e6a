"""Short personal notes from friends, as whole messages: how many does a model flag as spam?

Thirty notes written for this check (a greeting, a thank-you, "running late", "we won the
game!!!"; none taken from a corpus or modelled on a model's errors), each sent as an RFC 822
message with From, To, Date, Subject and Message-ID, then read through `message.to_text` and
scored at the checkpoint's own threshold, once per sender form: the same notes from a numbered
address at example.org, a plain one, a university address, and a freemail address with and
without a display name. No training corpus has short personal mail with headers, and only the
SpamAssassin corpus (2002) has sender lines at all, so the sender's form moves these scores.

    python bench/short_notes.py [--checkpoint PATH ...]

Prints a markdown table (notes flagged of 30, and the highest score, for each sender form and
model); the bundled model when no checkpoint is given. docs/MODEL.md, "Known weaknesses".
"""

from __future__ import annotations

import argparse
import sys
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailfilter.engine import Engine, bundled_checkpoint_path  # noqa: E402
from mailfilter.message import to_text  # noqa: E402

NOTES = [
    ("hey", "are we still on for tonight?"), ("Re: dinner", "sounds good, see you at 7"),
    ("thanks!", "thank you so much for the flowers!!"),
    ("congrats!!!", "congratulations on the new job! so happy for you"),
    ("quick question", "do you have the key to the shed?"),
    ("running late", "stuck in traffic, 10 min"),
    ("happy birthday!", "happy birthday!!! hope you have a great day"),
    ("photos", "here are the pics from saturday"),
    ("Re: Re: trip", "ok i booked the train. 9:15 from central"),
    ("hi", "call me when you get this"), ("miss you", "miss you guys! come visit soon :)"),
    ("weekend?", "want to go hiking on sunday?"), ("Re: question", "yes that works for me"),
    ("got it", "thanks, got it!"), ("lol", "that was hilarious!!!"),
    ("mom", "mom says hi and asks if you're coming for thanksgiving"),
    ("meeting moved", "we moved the meeting to 3pm"), ("yo", "wanna grab a beer?"),
    ("Re: party", "we'll bring the chips! can't wait!!"),
    ("good luck!", "good luck tomorrow, you'll do great!"),
    ("recipe", "here's the lasagna recipe you asked for"),
    ("oops", "sorry, wrong attachment. ignore that"),
    ("hello from paris!", "having an amazing time!! wish you were here"),
    ("Re: book", "loved it! lending you the sequel"), ("ping", "did you see my last message?"),
    ("new number", "this is my new phone number, save it!"), ("on my way", "leaving now"),
    ("Re: kids", "pick up at 4 today please"), ("woohoo!!!", "we won the game!!!"),
    ("thanks again", "great seeing you last night!"),
]  # fmt: skip

# `{i}`: the note's number, so each message has its own address in the first form.
SENDERS = [
    "Sam Rivera <sam{i}@example.org>",
    "Sam Rivera <sam@example.org>",
    "Sam Rivera <srivera@ucla.edu>",
    "Sam Rivera <sam.rivera@gmail.com>",
    "sam.rivera@gmail.com",
]


def note_message(i: int, subject: str, body: str, sender: str) -> bytes:
    """Note `i` as a whole message from `sender` (`{i}` in it is replaced by `i`)."""
    m = EmailMessage()
    m["From"] = sender.format(i=i)
    m["To"] = "me@example.net"
    m["Subject"] = subject
    m["Date"] = "Tue, 24 Nov 2026 10:00:00 +0000"
    m["Message-ID"] = f"<note{i}@example.org>"
    m.set_content(body)
    return m.as_bytes()


def flagged(engine: Engine, sender: str) -> tuple[int, float]:
    """How many of the notes from `sender` the engine flags at its threshold, and the top score."""
    texts = [to_text(note_message(i, s, b, sender)) for i, (s, b) in enumerate(NOTES)]
    scores = engine.score_texts(texts)
    return sum(s >= engine.threshold for s in scores), max(scores)


def table(paths: list[Path]) -> str:
    """The markdown table: one row per sender form, one column per checkpoint."""
    engines = [Engine.load(p, device="cpu", workers=1) for p in paths]
    head = " | ".join(f"{p.name} ({e.model_id}, threshold {e.threshold:.5f})"
                      for p, e in zip(paths, engines, strict=True))
    lines = [f"| sender | {head} |", "|---|" + "---:|" * len(engines)]
    for sender in SENDERS:
        cells = []
        for engine in engines:
            n, top = flagged(engine, sender)
            cells.append(f"{n} of {len(NOTES)} (max {top:.5f})")
        lines.append(f"| `{sender}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Parse arguments and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, action="append",
                    help="a classifier checkpoint (repeatable; default: the bundled model)")
    args = ap.parse_args()
    print(table(args.checkpoint or [bundled_checkpoint_path()]))


if __name__ == "__main__":
    main()
