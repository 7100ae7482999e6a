"""The scoring engine: one loaded checkpoint, length-bucketed padded batches, p(spam) out.

Raw mail in (`score_messages`): a large scan on the CPU is scored by forked worker processes
(`mailfilter.workers`), each running parsing, tokenising and the model with one thread; a small
one, or one on a GPU, in this process, where parsing and tokenising run in a worker thread one
chunk ahead of the model.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from itertools import chain, islice
from pathlib import Path
from typing import Generic, TypeVar

import torch

from mailfilter.message import to_text as mail_to_text
from mailfilter.workers import auto_workers, can_fork, score_in_workers
from models.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from models.classifier import right_pad
from models.tokenizer import EOT_ID, encode_batch_head

log = logging.getLogger(__name__)
T = TypeVar("T")
BUNDLED_MODEL = "default.safetensors"
# Messages per batch by default. On the CPU small batches are faster per message (the attention
# scores of 8 messages of 256 tokens stay in cache; bench/scan.py --batch-size: 264 messages/s at
# 8 against 215 at 16 and 222 at 32 on 2 cores; with the 512-token model, bf16, forward 466 at 8
# against 383 at 4 and 396 at 16, docs/MODEL.md "Speed"); a GPU wants large ones.
CPU_BATCH = 8
CUDA_BATCH = 256
# bf16 on the CPU: oneDNN builds and caches kernels per input shape, so a batch width of every
# length from 1 to 256 holds hundreds of them. Rounding each batch's width up to a multiple of
# 32 keeps 8 widths (16 for a 512-token model): scoring 4,000 SpamAssassin messages in one
# process with the 256-token model peaked at 374-376 MB instead of 855-916 MB (three runs
# each), at 852-934 messages/s instead of 693-901 (noisy; docs/MODEL.md, "Speed"). float32 has
# no such cache and loses 5% to the padding (594 against 566 at 16), so it pads to the longest
# as before; so does a GPU (not measured).
BF16_CPU_PAD_MULTIPLE = 32


class EngineError(Exception):
    """The model cannot be loaded or run."""


def bundled_checkpoint_path() -> Path:
    """Path of the model shipped inside the package."""
    return Path(str(resources.files("models").joinpath("data", BUNDLED_MODEL)))


def pick_device(device: str) -> torch.device:
    """`auto` → CUDA when present, else CPU; `cuda` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise EngineError("device 'cuda' requested but no CUDA GPU is available")
    return torch.device(device)


def _cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the hardware computes it natively, float32 otherwise."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if _cpu_has_native_bf16() else torch.float32


@dataclass(frozen=True)
class Scored(Generic[T]):
    """An input item with its p(spam), or the error that kept it from being scored."""

    item: T
    score: float | None
    error: str | None = None


class Engine:
    """Holds a classifier checkpoint and scores token sequences in padded batches."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        device: str = "auto",
        threads: int | None = None,
        batch_size: int | None = None,
        dtype: torch.dtype | None = None,
        workers: int | None = None,
        pad_multiple: int | None = None,
    ) -> None:
        """`batch_size`: None picks CPU_BATCH or CUDA_BATCH. `workers`: processes for a large
        scan on the CPU (None: one per core, up to 8, no more than `threads`; 1: this process
        only). `pad_multiple`: batches are padded to a multiple of this many tokens (None:
        BF16_CPU_PAD_MULTIPLE for bf16 on the CPU, else 1)."""
        if checkpoint.meta.kind != "classifier":
            raise EngineError("checkpoint is a language model, not a spam classifier")
        if threads:
            torch.set_num_threads(threads)
        self.device = pick_device(device)
        self.dtype = dtype or pick_dtype(self.device)
        self.checkpoint = checkpoint
        self.model = checkpoint.model.to(self.device, self.dtype).eval()
        self.max_length = checkpoint.meta.max_length
        self.text_form = checkpoint.meta.text_form
        self.threshold = checkpoint.meta.threshold
        self.model_id = checkpoint.sha256[:16]
        self.batch_size = batch_size or (CUDA_BATCH if self.device.type == "cuda" else CPU_BATCH)
        bf16_cpu = self.device.type == "cpu" and self.dtype == torch.bfloat16
        self.pad_multiple = pad_multiple or (BF16_CPU_PAD_MULTIPLE if bf16_cpu else 1)
        self._spam_index = list(checkpoint.meta.labels).index("spam")
        self.workers = 1 if self.device.type != "cpu" else workers or auto_workers(threads)
        # Forking costs little, but a small scan is done before workers would help.
        self.pool_min = max(128, 4 * self.batch_size)

    @classmethod
    def load(cls, path: Path | None = None, **kwargs: object) -> Engine:
        """Load `path`; when None, the model `retrain` installed, else the bundled one."""
        from mailfilter.model_store import active_model_path

        path = active_model_path(path)
        if not path.exists():
            raise EngineError(
                f"model not found: {path} "
                "(set a checkpoint, or run `mailfilter train --preset default`)"
            )
        try:
            return cls(load_checkpoint(path), **kwargs)  # type: ignore[arg-type]
        except CheckpointError as e:
            raise EngineError(str(e)) from e

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids of the texts as the checkpoint reads them (`CheckpointMeta.text_form`),
        truncated to its max_length (the head of the text is kept)."""
        texts = self.text_form.apply(texts)
        return [ids or [EOT_ID] for ids in encode_batch_head(texts, self.max_length)]

    @torch.inference_mode()
    def score_ids(self, seqs: list[list[int]]) -> list[float]:
        """p(spam) per sequence; batches are grouped by length and right-padded with EOT."""
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        scores = [0.0] * len(seqs)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            rows = [seqs[i] for i in chunk]
            batch, lengths = right_pad(rows, min_width=self._width(max(len(r) for r in rows)))
            logits = self.model(batch.to(self.device), lengths.to(self.device)).float()
            probs = torch.softmax(logits, dim=-1)[:, self._spam_index].cpu().tolist()
            for i, p in zip(chunk, probs, strict=True):
                scores[i] = p
        return scores

    def _width(self, longest: int) -> int:
        """A batch's padded width: its longest sequence rounded up to `pad_multiple`, never
        past max_length (nor below the longest, if a caller passed longer sequences)."""
        rounded = -(-longest // self.pad_multiple) * self.pad_multiple
        return max(longest, min(rounded, self.max_length))

    def score_texts(self, texts: list[str]) -> list[float]:
        """p(spam) for model texts."""
        return self.score_ids(self.tokenize(texts))

    def score_messages(
        self,
        items: Iterable[T],
        raw_of: Callable[[T], bytes],
        chunk_size: int | None = None,
        read: Callable[[bytes], str] = mail_to_text,
    ) -> Iterator[Scored[T]]:
        """p(spam) for raw messages (`raw_of` gives an item's bytes; it is called once per
        item, in order), yielded in order; a message that cannot be scored has score None.
        `chunk_size`: messages prepared (and, with workers, sent) at a time; default 4 batches,
        small enough that the last chunks leave no worker idle for long. `read` makes the
        model text (`message.to_text`; benchmarks pass a corpus reader's)."""
        chunk_size = chunk_size or max(64, 4 * self.batch_size)
        it = iter(items)
        head = list(islice(it, self.pool_min))
        rest = chain(head, it)
        if self.workers > 1 and len(head) >= self.pool_min and can_fork():
            yield from score_in_workers(self, rest, raw_of, self.workers, chunk_size, read)
        else:
            yield from self.score_stream(rest, lambda item: read(raw_of(item)), chunk_size)

    def score_stream(
        self, items: Iterable[T], to_text: Callable[[T], str], chunk_size: int = 256
    ) -> Iterator[Scored[T]]:
        """Score items in chunks; a worker thread prepares chunk n+1 while the model runs chunk n.

        `to_text` failures are reported per item (score None) and never stop the stream.
        """
        prepared: queue.Queue[tuple[list[Scored[T]], list[T], list[list[int]]] | None] = (
            queue.Queue(maxsize=2)
        )
        stop = threading.Event()
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                it = iter(items)
                while not stop.is_set():
                    failed: list[Scored[T]] = []
                    ok: list[T] = []
                    texts: list[str] = []
                    for item in it:
                        try:
                            texts.append(to_text(item))
                            ok.append(item)
                        except Exception as e:  # a bad message is a skip, never a crash
                            failed.append(Scored(item, None, f"{type(e).__name__}: {e}"))
                        if len(ok) + len(failed) >= chunk_size:
                            break
                    if not ok and not failed:
                        break
                    prepared.put((failed, ok, self.tokenize(texts)))
            except BaseException as e:
                failure.append(e)
            finally:
                prepared.put(None)

        worker = threading.Thread(target=produce, name="mailfilter-prepare", daemon=True)
        worker.start()
        try:
            while (got := prepared.get()) is not None:
                failed, ok, ids = got
                yield from failed
                for item, score in zip(ok, self.score_ids(ids), strict=True):
                    yield Scored(item, score)
        finally:
            stop.set()
            while worker.is_alive():  # drain so the producer can finish its put()
                with contextlib.suppress(queue.Empty):
                    prepared.get(timeout=0.1)
            worker.join()
        if failure:
            raise failure[0]
