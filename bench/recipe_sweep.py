"""Benchmark: does a longer pretraining (or more fine-tuning, EMA, separate trunks) make a better
bundled model? Each recipe variant runs the whole default preset (vocabulary, pretraining, two
fine-tuned members, ensemble, threshold on validation) from several seeds, on the preset's own
stable split, and reports validation and test metrics per corpus.

Meant for a GPU (12 variants at once in as many processes: ~5 minutes on one H100; on 2 CPU
cores each variant takes 45-100 minutes). The splits are tokenised once, here, into a cache
(token ids and labels only; it holds no text):

    python bench/recipe_sweep.py cache CACHE.npz          # needs ../shared/data
    python bench/recipe_sweep.py run CACHE.npz OUT.jsonl [--sweep 1|2] [--tiny]
    python bench/recipe_sweep.py table OUT.jsonl [...]
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from models.ensemble import GPTEnsemble
from models.hf_import import classifier_from_gpt2
from training.base_model import RandomSize, random_config
from training.corpora.example import Example
from training.data import TokenizedSet
from training.finetune import finetune, predict
from training.metrics import choose_threshold, compute_metrics, roc_auc
from training.presets import DEFAULT
from training.pretrain import pretrain
from training.vocab import build_token_map

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLITS = ("train", "val", "test")
GROUPS = ("spamassassin", "enron", "lingspam")
_S = (123, 7)  # the preset's member seeds
# Variants of the default preset; the letter after `_` is the pretraining draw (seed).
SWEEPS: dict[str, list[dict[str, Any]]] = {
    "1": [
        {"name": "base_a", "pt_steps": 1000, "pt_seeds": [123]},
        {"name": "base_b", "pt_steps": 1000, "pt_seeds": [5]},
        {"name": "base_c", "pt_steps": 1000, "pt_seeds": [11]},
        {"name": "pt3000_a", "pt_steps": 3000, "pt_seeds": [123]},
        {"name": "pt3000_b", "pt_steps": 3000, "pt_seeds": [5]},
        {"name": "pt3000_c", "pt_steps": 3000, "pt_seeds": [11]},
        {"name": "pt2000ft5_a", "pt_steps": 2000, "pt_seeds": [123], "ft_epochs": 5},
        {"name": "pt2000ft5_b", "pt_steps": 2000, "pt_seeds": [5], "ft_epochs": 5},
        {"name": "sep1500_a", "pt_steps": 1500, "pt_seeds": [123, 5]},
        {"name": "sep1500_b", "pt_steps": 1500, "pt_seeds": [11, 12]},
        {"name": "pt6000_a", "pt_steps": 6000, "pt_seeds": [123]},
        {"name": "pt3000ft5_a", "pt_steps": 3000, "pt_seeds": [123], "ft_epochs": 5},
    ],
    "2": [
        {"name": "base_d", "pt_steps": 1000, "pt_seeds": [21]},
        {"name": "base_e", "pt_steps": 1000, "pt_seeds": [22]},
        {"name": "pt2000_a", "pt_steps": 2000, "pt_seeds": [123]},
        {"name": "pt2000_b", "pt_steps": 2000, "pt_seeds": [5]},
        {"name": "pt2000_c", "pt_steps": 2000, "pt_seeds": [11]},
        {"name": "pt2000_d", "pt_steps": 2000, "pt_seeds": [21]},
        {"name": "pt2000_e", "pt_steps": 2000, "pt_seeds": [22]},
        {"name": "pt3000_d", "pt_steps": 3000, "pt_seeds": [21]},
        {"name": "pt3000_e", "pt_steps": 3000, "pt_seeds": [22]},
        {"name": "pt3000ema_a", "pt_steps": 3000, "pt_seeds": [123], "ema": 0.998},
        {"name": "pt3000ema_b", "pt_steps": 3000, "pt_seeds": [5], "ema": 0.998},
        {"name": "pt3000ema_c", "pt_steps": 3000, "pt_seeds": [11], "ema": 0.998},
    ],
}


def build_cache(path: Path) -> None:
    """Tokenise the default preset's splits (each message's first 1,024 tokens) into `path`."""
    from models.tokenizer import encode_batch
    from training.job import load_examples, make_splits

    splits, summary = make_splits(load_examples([DATA / c for c in DEFAULT.corpora]), DEFAULT)
    arrays: dict[str, np.ndarray] = {}
    for name in SPLITS:
        items = splits[name]
        ids = [x[:1024] for x in encode_batch([e.text for e in items])]
        arrays[f"{name}_lens"] = np.array([len(x) for x in ids], dtype=np.int32)
        arrays[f"{name}_flat"] = np.array([t for x in ids for t in x], dtype=np.uint16)
        arrays[f"{name}_labels"] = np.array([e.label for e in items], dtype=np.int8)
        arrays[f"{name}_group"] = np.array([_group(e.source) for e in items])
    np.savez_compressed(path, **arrays)
    print(json.dumps({k: v for k, v in summary.items() if k in SPLITS}))


def _group(source: str) -> str:
    first = source.split("/")[0]
    return "enron" if first.startswith("enron") else first


Data = dict[str, tuple[list[list[int]], list[int], list[str]]]


def load_cache(path: Path, tiny: bool) -> Data:
    """The cached splits: token ids, labels and corpus group per message."""
    d = np.load(path)
    out: Data = {}
    for name in SPLITS:
        flat, lens = d[f"{name}_flat"].astype(np.int64), d[f"{name}_lens"]
        offs = np.concatenate([[0], np.cumsum(lens)])
        ids = [flat[offs[i] : offs[i + 1]].tolist() for i in range(len(lens))]
        labels, groups = d[f"{name}_labels"].tolist(), d[f"{name}_group"].tolist()
        if tiny:
            ids, labels, groups = ids[::40], labels[::40], groups[::40]
        out[name] = (ids, labels, groups)
    return out


def run_variant(cfg: dict[str, Any], data: Data, dev: torch.device, tiny: bool) -> dict[str, Any]:
    """The whole default recipe with this variant's changes; metrics per split and corpus."""
    started = time.time()
    shape = RandomSize.parse(DEFAULT.size)
    train_ids = data["train"][0]
    token_map = build_token_map(train_ids, DEFAULT.vocab_size or 16384, min_count=3)
    assert DEFAULT.pretrain is not None
    steps = 8 if tiny else cfg["pt_steps"]
    pcfg = replace(DEFAULT.pretrain, max_steps=steps, max_minutes=None, save_every=10**9,
                   eval_every=max(1, steps // 4))
    trunks, lm_losses = [], []
    for k, seed in enumerate(cfg["pt_seeds"]):
        out = Path(f"/tmp/recipe-sweep-{cfg['name']}-{k}.safetensors")
        out.unlink(missing_ok=True)
        lm, hist = pretrain(random_config(shape, token_map), train_ids, data["val"][0],
                            replace(pcfg, seed=seed), out, token_map, dev, progress=False)
        trunks.append(classifier_from_gpt2(lm))
        lm_losses.append(round(hist.val_loss[-1], 3))
    examples = {n: [Example("", y, g) for y, g in zip(data[n][1], data[n][2], strict=True)]
                for n in SPLITS}
    sets = {n: TokenizedSet(examples[n], DEFAULT.max_length or 256, data[n][0]) for n in SPLITS}
    fcfg = replace(DEFAULT.finetune, epochs=cfg.get("ft_epochs", DEFAULT.finetune.epochs),
                   ema_decay=cfg.get("ema"), max_steps=5 if tiny else None)
    members, member_auc = [], []
    for k, seed in enumerate(_S):
        member = copy.deepcopy(trunks[k % len(trunks)])
        member.set_trainable("all", DEFAULT.last_blocks)
        finetune(member, sets["train"], sets["val"], replace(fcfg, seed=seed), dev, progress=False)
        members.append(member)
        member_auc.append([round(roc_auc(sets[n].labels, predict(member, sets[n], dev)), 5)
                           for n in ("val", "test")])
    model = GPTEnsemble(members)
    scores = {n: predict(model, sets[n], dev) for n in ("val", "test")}
    threshold = choose_threshold(sets["val"].labels, scores["val"], DEFAULT.max_fpr or 0.0025)
    res: dict[str, Any] = {"name": cfg["name"], "cfg": cfg, "lm_val_loss": lm_losses,
                           "member_auc": member_auc, "threshold": threshold,
                           "device": str(dev), "seconds": round(time.time() - started, 1)}
    for n in ("val", "test"):
        labels, groups = sets[n].labels, data[n][2]
        m = compute_metrics(labels, scores[n], threshold)
        res[n] = {"auc": m.roc_auc, "fp": m.fp, "fn": m.fn}
        for g in GROUPS:
            idx = [i for i, x in enumerate(groups) if x == g]
            mg = compute_metrics([labels[i] for i in idx], [scores[n][i] for i in idx], threshold)
            res[n][g] = {"auc": mg.roc_auc, "fp": mg.fp, "fn": mg.fn}
    return res


def _worker(job: tuple[dict[str, Any], str, str, bool]) -> None:
    cfg, cache, out, tiny = job
    torch.set_num_threads(1)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        res = run_variant(cfg, load_cache(Path(cache), tiny), dev, tiny)
    except Exception as e:  # one broken variant must not hide the others' results
        res = {"name": cfg["name"], "error": repr(e)}
    with open(out, "a") as f:
        f.write(json.dumps(res) + "\n")
    print(res["name"], res.get("seconds"), res.get("test", res.get("error")), flush=True)


def table(paths: list[Path]) -> str:
    """Mean (and range) per variant over its draws, as Markdown."""
    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line]
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if "error" not in r:
            by.setdefault(re.sub(r"_[a-z]$", "", r["name"]), []).append(r)
    out = ["| variant | draws | val AUC mean (range) | val FN | test AUC mean (range) "
           "| test FP / FN | SpamAssassin test FN (each draw) |", "|---|---:|---|---:|---|---|---|"]
    for name, rs in by.items():
        va, ta = [r["val"]["auc"] for r in rs], [r["test"]["auc"] for r in rs]
        out.append(
            f"| {name} | {len(rs)} | {statistics.mean(va):.5f} ({min(va):.5f}–{max(va):.5f}) "
            f"| {statistics.mean(r['val']['fn'] for r in rs):.1f} "
            f"| {statistics.mean(ta):.5f} ({min(ta):.5f}–{max(ta):.5f}) "
            f"| {statistics.mean(r['test']['fp'] for r in rs):.1f} / "
            f"{statistics.mean(r['test']['fn'] for r in rs):.1f} "
            f"| {', '.join(str(r['test']['spamassassin']['fn']) for r in rs)} |")
    return "\n".join(out)


def main() -> int:
    """Command line: cache, run or table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("cache", type=Path)
    r = sub.add_parser("run")
    r.add_argument("cache", type=Path)
    r.add_argument("out", type=Path)
    r.add_argument("--sweep", choices=sorted(SWEEPS), default="1")
    r.add_argument("--tiny", action="store_true", help="a few steps on 1/40 of the data")
    t = sub.add_parser("table")
    t.add_argument("results", type=Path, nargs="+")
    args = ap.parse_args()
    if args.cmd == "cache":
        if not DATA.is_dir():
            print(f"skip: {DATA} not found (needs ../shared/data)", file=sys.stderr)
            return 0
        build_cache(args.cache)
    elif args.cmd == "run":
        configs = SWEEPS[args.sweep][:3] if args.tiny else SWEEPS[args.sweep]
        jobs = [(cfg, str(args.cache), str(args.out), args.tiny) for cfg in configs]
        with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
            pool.map(_worker, jobs, chunksize=1)
    else:
        print(table(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
