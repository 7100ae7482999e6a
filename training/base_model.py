"""Where a classifier's trunk comes from: OpenAI GPT-2, one of our checkpoints, or random init."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from models.checkpoint import FORMAT, load_checkpoint, read_meta
from models.classifier import GPTClassifier
from models.gpt import GPT, PRESETS, GPTConfig
from models.hf_import import HUB_REPOS, classifier_from_gpt2, resolve_base_model
from models.tokenizer import AS_IS, TextForm


class BaseModelError(ValueError):
    """The requested base model cannot be built."""


@dataclass(frozen=True)
class RandomSize:
    """Shape of a randomly initialised trunk."""

    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    block_size: int = 1024

    @classmethod
    def parse(cls, spec: str) -> RandomSize:
        """`gpt2`…`gpt2-xl`, or `LxHxE[xCTX]`, e.g. `4x4x256x512`."""
        if spec in PRESETS:
            c = PRESETS[spec]
            return cls(c.n_layer, c.n_head, c.n_embd, c.block_size)
        try:
            parts = [int(p) for p in spec.lower().split("x")]
        except ValueError:
            parts = []
        if len(parts) not in (3, 4) or min(parts) < 1:
            raise BaseModelError(
                f"bad model size {spec!r}: use a preset ({', '.join(PRESETS)}) "
                "or LAYERSxHEADSxEMBD[xCTX]"
            )
        if parts[2] % parts[1]:
            raise BaseModelError(f"bad model size {spec!r}: n_embd must divide by n_head")
        return cls(*parts)


def random_config(size: RandomSize, token_map: torch.Tensor | None = None) -> GPTConfig:
    """The config of a fresh model; with a token map, its compact vocabulary."""
    vocab_size, input_vocab_size = GPTConfig.vocab_size, 0
    if token_map is not None:
        vocab_size, input_vocab_size = int(token_map.max()) + 1, len(token_map)
    return GPTConfig(n_layer=size.n_layer, n_head=size.n_head, n_embd=size.n_embd,
                     block_size=size.block_size, vocab_size=vocab_size,
                     input_vocab_size=input_vocab_size)


def random_classifier(size: RandomSize, token_map: torch.Tensor | None = None) -> GPTClassifier:
    """A randomly initialised classifier, reading through `token_map` when given."""
    model = GPTClassifier(random_config(size, token_map))
    if token_map is not None:
        assert model.transformer.token_map is not None
        model.transformer.token_map.copy_(token_map)
    return model


def _is_our_checkpoint(path: Path) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == FORMAT
    except Exception:
        return False


def base_text_form(base: str, preset_form: TextForm) -> TextForm:
    """How a trunk reads text: a mailfilter checkpoint says (it was trained so), an
    OpenAI/Hugging Face GPT-2 reads it as it is (it was pretrained on cased text with no
    `to_text` format at all), a random trunk takes the preset's form."""
    if base == "random":
        return preset_form
    path = Path(base)
    if base not in HUB_REPOS and path.is_file() and _is_our_checkpoint(path):
        return read_meta(path).text_form
    return AS_IS


def build_base_classifier(
    base: str,
    size: RandomSize | None = None,
    cache_dir: Path | None = None,
    token_map: torch.Tensor | None = None,
) -> GPTClassifier:
    """A classifier whose trunk is `base`: `random`, a GPT-2 preset name, or a safetensors path.

    A path may be an OpenAI/Hugging Face GPT-2 file, a mailfilter language-model checkpoint
    (from `mailfilter pretrain`), or a mailfilter classifier checkpoint (training continues).
    """
    if base == "random":
        return random_classifier(size or RandomSize(), token_map)
    if base in HUB_REPOS:
        return classifier_from_gpt2(resolve_base_model(base, cache_dir))
    path = Path(base)
    if not path.exists():
        raise BaseModelError(
            f"base model {base!r} is not 'random', a GPT-2 preset ({', '.join(HUB_REPOS)}), "
            "or an existing file"
        )
    if path.is_file() and _is_our_checkpoint(path):
        ckpt = load_checkpoint(path)
        if isinstance(ckpt.model, GPTClassifier):
            return ckpt.model
        assert isinstance(ckpt.model, GPT)
        return classifier_from_gpt2(ckpt.model)
    return classifier_from_gpt2(resolve_base_model(path, cache_dir))
