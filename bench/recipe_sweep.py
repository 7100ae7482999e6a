"""Benchmark: does a longer pretraining (or more fine-tuning, EMA, separate trunks) make a better
bundled model? Each recipe variant runs the whole default preset (vocabulary, pretraining, two
fine-tuned members, ensemble, threshold on validation) from several seeds, on the preset's own
stable split, and reports validation and test metrics per corpus.

Sweep 3 asks whether case folding (every text lower-cased before tokenising) generalises better:
Enron-Spam and Ling-Spam, 83% of the training mail, come lower-cased, so with case kept what the
model learns from them reaches only lower-case mail. Its variants with `holdout` train without one
corpus (vocabulary, pretraining, fine-tuning, threshold on the other corpora's validation split)
and score that corpus: its test split, and all of its messages (none was trained on).
Sweep 5 asks the same of the sender lines (`From:`/`Reply-To:`, which only the SpamAssassin
corpus has): lower-cased text with them, without them, and one member of each; run it on the
`cache --lower` file with `--second-cache` the `cache --lower --no-sender` one.
Sweep 6 asks it of punctuation spaced apart (`thanks , see you .`, the form Enron-Spam and
Ling-Spam come in; the default preset since 2026-11-26): five draws and the held-out runs on
`--second-cache` the `cache --lower --split-punct` file, beside two draws of lower-cased text
as written.
Sweep 7 asks whether the SpamAssassin corpus, the only mail here as users have it (headers,
mixed case, HTML) and 17.5% of the training split, should weigh more in fine-tuning: it is
repeated 2 or 4 times there, five draws each, on the `cache --lower --split-punct` file.
Sweep 8 asks it of new mail: the corpus's 2003 folders (easy_ham_2, spam_2) held out, the 2002
ones repeated. Beside OUT.jsonl, OUT.scores.jsonl keeps each run's per-message validation and
test scores (split order), for rankings at other false-positive counts.

Meant for a GPU (12 variants at once in as many processes: ~5 minutes on one H100; on 2 CPU
cores each variant takes 45-100 minutes). The splits are tokenised once, here, into a cache
(token ids and labels only; it holds no text):

    python bench/recipe_sweep.py cache CACHE.npz [--lower] [--no-sender] [--split-punct]
    python bench/recipe_sweep.py run CACHE.npz OUT.jsonl [--sweep 1…6] [--second-cache C2.npz]
                                     [--tiny]
    python bench/recipe_sweep.py table OUT.jsonl [...]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
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

from models.hf_import import classifier_from_gpt2
from training.base_model import RandomSize, random_config
from training.corpora.example import Example
from training.corpora.split import oversample
from training.data import TokenizedSet
from training.finetune import finetune, predict, predict_log_odds
from training.metrics import choose_threshold, compute_metrics, roc_auc
from training.presets import DEFAULT
from training.pretrain import pretrain
from training.vocab import build_token_map

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLITS = ("train", "val", "test")
GROUPS = ("spamassassin", "enron", "lingspam")
_S = (123, 7)  # member seeds of every sweep so far (the preset's until 2026-11-27; now 11, 13)
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
    "3": [
        *({"name": f"base_{k}", "pt_steps": 1000, "pt_seeds": [s]}
          for k, s in (("a", 123), ("b", 5))),
        *({"name": f"lower_{k}", "pt_steps": 1000, "pt_seeds": [s], "lower": True}
          for k, s in (("a", 123), ("b", 5), ("c", 11), ("d", 21), ("e", 22))),
        *({"name": f"{case}-no-{g}_{k}", "pt_steps": 1000, "pt_seeds": [s], "holdout": g,
           "lower": case == "lower"}
          for g, draws in (("spamassassin", (("a", 123), ("b", 5))),
                           ("enron", (("a", 123), ("b", 5))), ("lingspam", (("a", 123),)))
          for k, s in draws for case in ("base", "lower")),
    ],
    # One cased trunk; member 1 fine-tuned on cased text, member 2 on lower-cased text.
    "4": [
        {"name": "base_a", "pt_steps": 1000, "pt_seeds": [123]},
        *({"name": f"hybrid_{k}", "pt_steps": 1000, "pt_seeds": [s], "lower": True,
           "hybrid": True}
          for k, s in (("a", 123), ("b", 5), ("c", 11), ("d", 21), ("e", 22))),
        *({"name": f"hybrid-no-{g}_{k}", "pt_steps": 1000, "pt_seeds": [s], "holdout": g,
           "lower": True, "hybrid": True}
          for g, draws in (("spamassassin", (("a", 123), ("b", 5))),
                           ("enron", (("a", 123), ("b", 5))), ("lingspam", (("a", 123),)))
          for k, s in draws),
    ],
    # On the lower-cased cache; "lower": True reads the second cache (lower-cased, no sender
    # lines). `mixed`: one trunk pretrained with sender lines, member 2 fine-tuned without.
    "5": [
        *({"name": f"lower_{k}", "pt_steps": 1000, "pt_seeds": [s]}
          for k, s in (("a", 123), ("b", 5))),
        *({"name": f"{v}_{k}", "pt_steps": 1000, "pt_seeds": [s], "lower": True,
           "hybrid": v == "mixed"}
          for k, s in (("a", 123), ("b", 5), ("c", 11), ("d", 21), ("e", 22))
          for v in ("nosender", "mixed")),
        *({"name": f"{v}-no-{g}_{k}", "pt_steps": 1000, "pt_seeds": [s], "holdout": g,
           "lower": True, "hybrid": v == "mixed"}
          for g, draws in (("spamassassin", (("a", 123), ("b", 5))),
                           ("enron", (("a", 123), ("b", 5))), ("lingspam", (("a", 123),)))
          for k, s in draws for v in ("nosender", "mixed")),
    ],
    # On the lower-cased cache; "lower": True reads the second cache (lower-cased, punctuation
    # spaced apart) for everything, trunk included.
    "6": [
        *({"name": f"lower_{k}", "pt_steps": 1000, "pt_seeds": [s]}
          for k, s in (("a", 123), ("b", 5))),
        *({"name": f"punct_{k}", "pt_steps": 1000, "pt_seeds": [s], "lower": True}
          for k, s in (("a", 123), ("b", 5), ("c", 11), ("d", 21), ("e", 22))),
        *({"name": f"punct-no-{g}_{k}", "pt_steps": 1000, "pt_seeds": [s], "holdout": g,
           "lower": True}
          for g, draws in (("spamassassin", (("a", 123), ("b", 5))),
                           ("enron", (("a", 123), ("b", 5))), ("lingspam", (("a", 123),)))
          for k, s in draws),
    ],
    # On the `cache --lower --split-punct` file (the preset's text): the SpamAssassin corpus,
    # the only raw mail, repeated 2 or 4 times in the fine-tuning set (pretraining unchanged).
    "7": [
        {"name": f"{v}_{k}", "pt_steps": 1000, "pt_seeds": [s], "sa_repeat": r}
        for k, s in (("a", 123), ("b", 5), ("c", 11), ("d", 21), ("e", 22))
        for v, r in (("base", 1), ("sa2", 2), ("sa4", 4))
    ],
    # The same question on new mail: the SpamAssassin corpus's 2003 folders held out of
    # everything (vocabulary, pretraining, fine-tuning, threshold), its 2002 ones repeated.
    "8": [
        {"name": f"{v}-no-sa2003_{k}", "pt_steps": 1000, "pt_seeds": [s], "sa_repeat": r,
         "holdout": "spamassassin-2003", "sa_years": True}
        for k, s in (("a", 123), ("b", 5), ("c", 11), ("d", 21))
        for v, r in (("base", 1), ("sa2", 2), ("sa4", 4))
    ],
}


def build_cache(path: Path, lower: bool = False, no_sender: bool = False,
                split_punct: bool = False) -> None:
    """Tokenise the default preset's splits (each message's first 1,024 tokens) into `path`;
    `lower`: lower-case every text first, `no_sender`: leave out its From/Reply-To lines,
    `split_punct`: space every punctuation mark apart (the split itself is the same)."""
    from models.tokenizer import TextForm, encode_batch
    from training.job import load_examples, make_splits

    splits, summary = make_splits(load_examples([DATA / c for c in DEFAULT.corpora]), DEFAULT)
    form = TextForm("lower" if lower else "keep", "drop" if no_sender else "keep",
                    "split" if split_punct else "keep")
    arrays: dict[str, Any] = {}
    for name in SPLITS:
        items = splits[name]
        texts = form.apply([e.text for e in items])
        ids = [x[:1024] for x in encode_batch(texts)]
        arrays[f"{name}_lens"] = np.array([len(x) for x in ids], dtype=np.int32)
        arrays[f"{name}_flat"] = np.array([t for x in ids for t in x], dtype=np.uint16)
        arrays[f"{name}_labels"] = np.array([e.label for e in items], dtype=np.int8)
        arrays[f"{name}_group"] = np.array([_group(e) for e in items])
        arrays[f"{name}_sub"] = np.array([e.source.split("/")[1] if _group(e) == "spamassassin"
                                          else _group(e) for e in items])
    np.savez_compressed(path, **arrays)
    print(json.dumps({k: v for k, v in summary.items() if k in SPLITS}))


def _group(example: Example) -> str:
    """The corpus, with Enron-Spam's five parts as one."""
    return "enron" if example.corpus.startswith("enron") else example.corpus


Data = dict[str, tuple[list[list[int]], list[int], list[str]]]


def load_cache(path: Path, tiny: bool, sa_years: bool = False) -> Data:
    """The cached splits: token ids, labels and corpus group per message. `sa_years`: the
    SpamAssassin corpus's 2003 folders (easy_ham_2, spam_2) form their own group,
    `spamassassin-2003`, apart from its 2002 ones."""
    d = np.load(path)
    out: Data = {}
    for name in SPLITS:
        flat, lens = d[f"{name}_flat"].astype(np.int64), d[f"{name}_lens"]
        offs = np.concatenate([[0], np.cumsum(lens)])
        ids = [flat[offs[i] : offs[i + 1]].tolist() for i in range(len(lens))]
        labels, groups = d[f"{name}_labels"].tolist(), d[f"{name}_group"].tolist()
        if sa_years:
            groups = [f"{g}-2003" if sub.endswith("_2") else g
                      for g, sub in zip(groups, d[f"{name}_sub"].tolist(), strict=True)]
        if tiny:
            ids, labels, groups = ids[::40], labels[::40], groups[::40]
        out[name] = (ids, labels, groups)
    return out


def split_holdout(data: Data, group: str) -> tuple[Data, Data]:
    """The splits without `group`'s messages, and `group`'s messages alone."""
    def pick(keep: bool) -> Data:
        return {n: tuple(map(list, zip(*[r for r in zip(*data[n], strict=True)  # type: ignore[misc]
                                         if (r[2] == group) == keep], strict=True)))
                for n in SPLITS}
    return pick(False), pick(True)


def repeat_group(data: Data, group: str, times: int) -> Data:
    """The splits with `group`'s training messages there `times` times (the others once), as
    the preset's `oversample` has them."""
    ids, labels, groups = data["train"]
    picks = oversample([Example("", y, g) for y, g in zip(labels, groups, strict=True)],
                       {group: times})
    return {**data, "train": ([ids[i] for i in picks], [labels[i] for i in picks],
                              [groups[i] for i in picks])}


def run_variant(cfg: dict[str, Any], data: Data, dev: torch.device, tiny: bool,
                lower: Data | None = None) -> dict[str, Any]:
    """The whole default recipe with this variant's changes; metrics per split and corpus.
    `lower`: the same splits lower-cased, which the second member of a `hybrid` variant reads
    (the trunk is pretrained on `data`)."""
    started = time.time()
    held: list[Data] = []
    if cfg.get("holdout"):
        data, held_cased = split_holdout(data, cfg["holdout"])
        held.append(held_cased)
        if lower is not None:
            lower, held_lower = split_holdout(lower, cfg["holdout"])
            held.append(held_lower)
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
    views = [_sets(data)] + ([_sets(lower)] if lower is not None else [])
    if cfg.get("sa_repeat", 1) > 1:  # fine-tuning only; the trunk saw each message once
        views[0] |= _sets(repeat_group(data, "spamassassin", cfg["sa_repeat"]), ("train",))
    fcfg = replace(DEFAULT.finetune, epochs=cfg.get("ft_epochs", DEFAULT.finetune.epochs),
                   ema_decay=cfg.get("ema"), max_steps=5 if tiny else None)
    members, member_auc = [], []
    for k, seed in enumerate(_S):
        sets = views[k % len(views)]
        member = copy.deepcopy(trunks[k % len(trunks)])
        member.set_trainable("all", DEFAULT.last_blocks)
        finetune(member, sets["train"], sets["val"], replace(fcfg, seed=seed), dev, progress=False)
        members.append(member)
        member_auc.append([round(roc_auc(sets[n].labels, predict(member, sets[n], dev)), 5)
                           for n in ("val", "test")])
    scores = {n: _ensemble_scores(members, [v[n] for v in views], dev) for n in ("val", "test")}
    labels_of = views[0]
    threshold = choose_threshold(labels_of["val"].labels, scores["val"],
                                 DEFAULT.max_fpr or 0.0025)
    res: dict[str, Any] = {"name": cfg["name"], "cfg": cfg, "lm_val_loss": lm_losses,
                           "member_auc": member_auc, "threshold": threshold,
                           "device": str(dev), "seconds": round(time.time() - started, 1),
                           "scores": {n: [round(p, 7) for p in scores[n]] for n in scores}}
    for n in ("val", "test"):
        labels, groups = labels_of[n].labels, data[n][2]
        m = compute_metrics(labels, scores[n], threshold)
        res[n] = {"auc": m.roc_auc, "fp": m.fp, "fn": m.fn}
        for g in GROUPS:
            idx = [i for i, x in enumerate(groups) if x == g]
            mg = compute_metrics([labels[i] for i in idx], [scores[n][i] for i in idx], threshold)
            if idx:
                res[n][g] = {"auc": mg.roc_auc, "fp": mg.fp, "fn": mg.fn}
    if held:
        res["holdout"] = _held_metrics(members, [_sets(h) for h in held], threshold, dev)
    return res


def _sets(data: Data, names: tuple[str, ...] = SPLITS) -> dict[str, TokenizedSet]:
    return {n: TokenizedSet([Example("", y, g) for y, g in zip(data[n][1], data[n][2],
                                                                strict=True)],
                            DEFAULT.max_length or 256, data[n][0]) for n in names}


def _ensemble_scores(members: list[Any], views: list[TokenizedSet],
                     dev: torch.device) -> list[float]:
    """sigmoid of the members' mean log-odds, member k reading views[k % len(views)]."""
    odds = [predict_log_odds(m, views[k % len(views)], dev) for k, m in enumerate(members)]
    return [1 / (1 + math.exp(-sum(o) / len(o))) for o in zip(*odds, strict=True)]


def _held_metrics(members: list[Any], views: list[dict[str, TokenizedSet]], threshold: float,
                  dev: torch.device) -> dict[str, Any]:
    """The held-out corpus scored: its test split, and all its messages."""
    scores = {n: _ensemble_scores(members, [v[n] for v in views], dev) for n in SPLITS}
    out: dict[str, Any] = {}
    for name, names in (("test", ("test",)), ("all", SPLITS)):
        labels = [y for n in names for y in views[0][n].labels]
        m = compute_metrics(labels, [p for n in names for p in scores[n]], threshold)
        ham, spam = labels.count(0), labels.count(1)
        out[name] = {"auc": m.roc_auc, "fp": m.fp, "fn": m.fn, "ham": ham, "spam": spam,
                     "fpr": m.fp / max(ham, 1), "fnr": m.fn / max(spam, 1)}
    return out


def _worker(job: tuple[dict[str, Any], str, str, bool]) -> None:
    cfg, cache, out, tiny = job
    torch.set_num_threads(1)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        lower = load_cache(Path(cfg["lower_cache"]), tiny) if cfg.get("lower") else None
        if cfg.get("hybrid"):  # cased trunk and first member; the second reads lower case
            res = run_variant(cfg, load_cache(Path(cache), tiny), dev, tiny, lower)
        else:
            data = lower or load_cache(Path(cache), tiny, cfg.get("sa_years", False))
            res = run_variant(cfg, data, dev, tiny)
    except Exception as e:  # one broken variant must not hide the others' results
        res = {"name": cfg["name"], "error": repr(e)}
    scores = res.pop("scores", None)
    with open(out, "a") as f:
        f.write(json.dumps(res) + "\n")
    if scores is not None:  # per message, in split order: for rankings at other counts
        with open(Path(out).with_suffix(".scores.jsonl"), "a") as f:
            f.write(json.dumps({"name": res["name"], **scores}) + "\n")
    print(res["name"], res.get("seconds"), res.get("test", res.get("error")), flush=True)


def _rows(paths: list[Path]) -> list[dict[str, Any]]:
    """Results, each run once: a rerun of a name (same seeds) in a later file is a repeat."""
    rows: dict[str, dict[str, Any]] = {}
    for p in paths:
        for line in p.read_text().splitlines():
            if line:
                r = json.loads(line)
                rows.setdefault(r["name"], r)
    return list(rows.values())


def table(paths: list[Path]) -> str:
    """Mean (and range) per variant over its draws, as Markdown."""
    rows = _rows(paths)
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if "error" not in r and "holdout" not in r:
            by.setdefault(re.sub(r"_[a-z]$", "", r["name"]), []).append(r)
    out = ["| variant | draws | val AUC mean (range) | val FN | test AUC mean (range) "
           "| test FP / FN | SpamAssassin test FP / FN (each draw) |",
           "|---|---:|---|---:|---|---|---|"]
    for name, rs in by.items():
        va, ta = [r["val"]["auc"] for r in rs], [r["test"]["auc"] for r in rs]
        out.append(
            f"| {name} | {len(rs)} | {statistics.mean(va):.5f} ({min(va):.5f}–{max(va):.5f}) "
            f"| {statistics.mean(r['val']['fn'] for r in rs):.1f} "
            f"| {statistics.mean(ta):.5f} ({min(ta):.5f}–{max(ta):.5f}) "
            f"| {statistics.mean(r['test']['fp'] for r in rs):.1f} / "
            f"{statistics.mean(r['test']['fn'] for r in rs):.1f} "
            f"| {', '.join(_fp_fn(r['test']['spamassassin']) for r in rs)} |")
    return "\n".join(out)


def _fp_fn(m: dict[str, Any]) -> str:
    return f"{m['fp']}/{m['fn']}"


def holdout_table(paths: list[Path]) -> str:
    """One row per held-out run: the held-out corpus scored at the threshold set without it."""
    rows = _rows(paths)
    out = ["| run | threshold | held-out test split: FPR, FNR, ROC AUC "
           "| all held-out messages: FPR, FNR, ROC AUC |", "|---|---:|---|---|"]
    for r in sorted((r for r in rows if "holdout" in r), key=lambda r: r["name"]):
        cells = []
        for part in ("test", "all"):
            h = r["holdout"][part]
            cells.append(f"{h['fpr']:.2%} ({h['fp']}/{h['ham']}), {h['fnr']:.2%}, {h['auc']:.4f}")
        out.append(f"| {r['name']} | {r['threshold']:.5f} | {cells[0]} | {cells[1]} |")
    return "\n".join(out)


def main() -> int:
    """Command line: cache, run or table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("cache", type=Path)
    c.add_argument("--lower", action="store_true", help="lower-case every text first")
    c.add_argument("--no-sender", action="store_true", help="leave out From/Reply-To lines")
    c.add_argument("--split-punct", action="store_true",
                   help="space every punctuation mark apart")
    r = sub.add_parser("run")
    r.add_argument("cache", type=Path)
    r.add_argument("out", type=Path)
    r.add_argument("--sweep", choices=sorted(SWEEPS), default="1")
    r.add_argument("--second-cache", "--lower-cache", dest="lower_cache", type=Path,
                   help="the other text's cache: `cache --lower` (sweeps 3, 4), "
                        "`cache --lower --no-sender` (sweep 5), "
                        "`cache --lower --split-punct` (sweep 6)")
    r.add_argument("--tiny", action="store_true", help="a few steps on 1/40 of the data")
    t = sub.add_parser("table")
    t.add_argument("results", type=Path, nargs="+")
    t.add_argument("--holdout", action="store_true", help="the held-out corpus runs instead")
    args = ap.parse_args()
    if args.cmd == "cache":
        if not DATA.is_dir():
            print(f"skip: {DATA} not found (needs ../shared/data)", file=sys.stderr)
            return 0
        build_cache(args.cache, args.lower, args.no_sender, args.split_punct)
    elif args.cmd == "run":
        configs = SWEEPS[args.sweep]
        if any(c.get("lower") for c in configs):
            if args.lower_cache is None:
                ap.error("this sweep needs --second-cache")
            configs = [{**c, "lower_cache": str(args.lower_cache)} for c in configs]
        if args.tiny:
            configs = configs[:3] if args.sweep in ("1", "2") else configs[1:3] + configs[-2:]
        jobs = [(cfg, str(args.cache), str(args.out), args.tiny) for cfg in configs]
        with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
            pool.map(_worker, jobs, chunksize=1)
    else:
        print(holdout_table(args.results) if args.holdout else table(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
