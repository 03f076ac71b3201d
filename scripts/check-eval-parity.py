#!/usr/bin/env python3
"""Scores real data with the reference implementations and with `transbrief eval`, and prints
both side by side with their differences.

    pip install sacrebleu==2.6.0 rouge-score==0.1.2 nltk
    cargo build
    python3 scripts/check-eval-parity.py [--shared ../shared] [--bin target/debug/transbrief]

1. CNN/DailyMail (shared/eval/cnndm-dev): the lead-3 baseline (first three sentences of each
   article) written as Markdown briefs (every ASCII punctuation mark backslash-escaped, so the
   Markdown reduces to exactly the sentences), scored against the highlights: rouge-score
   ROUGE-1/2/L/Lsum per document and their means, and sacrebleu BLEU/chrF/TER over the documents.
2. newstest (shared/eval/newstest-dev): a synthetic translation made from each reference by
   dropping one word per paragraph, swapping two neighbours and, in every third paragraph,
   moving the first three words to the end; scored paragraph by paragraph:
   sacrebleu corpus BLEU/chrF/TER and per-document BLEU (effective order), chrF and TER.

Nothing here is committed output: run it, read the table.
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF, TER

ROOT = Path(__file__).resolve().parent.parent
ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
ASCII_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")


def nonblank_lines(text):
    return [line.strip() for line in text.split("\n") if line.strip()]


def paragraphs(text):
    blocks, block = [], []
    for line in text.split("\n"):
        line = line.strip()
        if line:
            block.append(line)
        elif block:
            blocks.append(block)
            block = []
    if block:
        blocks.append(block)
    return [" ".join(b) for b in blocks]


def lead3(article):
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z\"'(])", " ".join(article.split()))
    return sentences[:3]


def run_eval(binary, hyp, ref, extra=()):
    out = subprocess.run([binary, "eval", "--hyp", hyp, "--ref", ref, "--json", *extra],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


class Table:
    def __init__(self, title):
        self.title, self.rows, self.max_diff = title, [], 0.0

    def add(self, name, ref_value, ours):
        diff = abs(ref_value - ours)
        self.max_diff = max(self.max_diff, diff)
        self.rows.append((name, ref_value, ours, diff))

    def note(self, name, diff):
        self.max_diff = max(self.max_diff, diff)
        self.rows.append((name, None, None, diff))

    def print(self):
        print(f"\n== {self.title}")
        print(f"{'metric':<46} {'reference':>14} {'transbrief':>14} {'abs diff':>10}")
        for name, r, o, d in self.rows:
            if r is None:
                print(f"{name:<46} {'':>14} {'':>14} {d:>10.2e}")
            else:
                print(f"{name:<46} {r:>14.6f} {o:>14.6f} {d:>10.2e}")
        print(f"max abs difference: {self.max_diff:.2e}")


def sacrebleu_rows(table, hyps, refs, ours, label):
    bleu, chrf, ter = BLEU(), CHRF(), TER()
    table.add(f"{label} BLEU", bleu.corpus_score(hyps, [refs]).score, ours["bleu"]["score"])
    table.add(f"{label} chrF2", chrf.corpus_score(hyps, [refs]).score, ours["chrf"]["score"])
    table.add(f"{label} TER", ter.corpus_score(hyps, [refs]).score, ours["ter"]["score"])
    same = (ours["bleu"]["signature"] == str(bleu.get_signature())
            and ours["chrf"]["signature"] == str(chrf.get_signature())
            and ours["ter"]["signature"] == str(ter.get_signature()))
    print(f"{label}: signatures {'identical' if same else 'DIFFER'}: {ours['bleu']['signature']}")


def cnndm(shared, binary):
    table = Table("CNN/DailyMail dev, lead-3 vs highlights (50 documents)")
    folder = shared / "eval" / "cnndm-dev"
    scorer = rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=True)
    with tempfile.TemporaryDirectory() as tmp:
        per_doc, hyps, refs = {}, [], []
        for article in sorted(folder.glob("*.txt")):
            if article.name.endswith(".highlights.txt"):
                continue
            stem = article.name[: -len(".txt")]
            sentences = lead3(article.read_text(encoding="utf-8"))
            md = "\n\n".join(ASCII_PUNCT.sub(r"\\\1", s) for s in sentences) + "\n"
            (Path(tmp) / f"{stem}.brief.en.md").write_text(md, encoding="utf-8")
            hyp = "\n".join(sentences)
            ref = "\n".join(nonblank_lines(
                (folder / f"{stem}.highlights.txt").read_text(encoding="utf-8")))
            per_doc[stem] = scorer.score(ref, hyp)
            hyps.append(hyp.replace("\n", " "))
            refs.append(ref.replace("\n", " "))
        ours = run_eval(binary, tmp, str(folder))
    docs = {d["name"]: d for d in ours["documents"]}
    assert set(docs) == set(per_doc), "the same documents were paired"
    for k in ROUGE_TYPES:
        for m in ("precision", "recall", "fmeasure"):
            worst = max(abs(getattr(per_doc[s][k], m) - docs[s][k][m]) for s in per_doc)
            table.note(f"per-document {k} {m} (max of 50)", worst)
    for k in ROUGE_TYPES:
        mean = sum(s[k].fmeasure for s in per_doc.values()) / len(per_doc)
        table.add(f"mean {k} F1 x100", 100 * mean, 100 * ours["corpus"][k]["fmeasure"])
    sacrebleu_rows(table, hyps, refs, ours["corpus"], "briefs corpus")
    table.print()
    return table.max_diff


def newstest(shared, binary):
    table = Table("newstest dev, reference with a word dropped, two swapped, a phrase moved")
    folder = shared / "eval" / "newstest-dev"
    all_h, all_r = [], []
    with tempfile.TemporaryDirectory() as tmp:
        per_doc = {}
        for ref_file in sorted(folder.glob("*.ref.en.txt")):
            stem = ref_file.name[: -len(".ref.en.txt")]
            refs = paragraphs(ref_file.read_text(encoding="utf-8"))
            hyps = []
            for i, p in enumerate(refs):
                words = p.split()
                if len(words) > 3:
                    del words[len(words) // 3]
                    j = (i * 7) % (len(words) - 1)
                    words[j], words[j + 1] = words[j + 1], words[j]
                if len(words) > 8 and i % 3 == 0:
                    words = words[3:] + words[:3]  # a phrase moved: TER shifts
                hyps.append(" ".join(words))
            (Path(tmp) / f"{stem}.en.txt").write_text("\n\n".join(hyps) + "\n", encoding="utf-8")
            per_doc[stem] = (hyps, refs)
            all_h += hyps
            all_r += refs
        ours = run_eval(binary, tmp, str(folder))
    docs = {d["name"]: d for d in ours["documents"]}
    assert set(docs) == set(per_doc), "the same documents were paired"
    worst = {"BLEU": 0.0, "chrF2": 0.0, "TER": 0.0}
    for stem, (hyps, refs) in per_doc.items():
        d = docs[stem]
        worst["BLEU"] = max(worst["BLEU"], abs(
            BLEU(effective_order=True).corpus_score(hyps, [refs]).score - d["bleu"]["score"]))
        worst["chrF2"] = max(worst["chrF2"], abs(
            CHRF().corpus_score(hyps, [refs]).score - d["chrf"]["score"]))
        worst["TER"] = max(worst["TER"], abs(
            TER().corpus_score(hyps, [refs]).score - d["ter"]["score"]))
    for name, diff in worst.items():
        table.note(f"per-document {name} (max of {len(per_doc)})", diff)
    print(f"newstest: {len(all_h)} paragraphs in {len(per_doc)} documents")
    sacrebleu_rows(table, all_h, all_r, ours["corpus"], "newstest corpus")
    table.print()
    return table.max_diff


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    candidates = [ROOT.parent / "shared", ROOT.parent.parent / "shared"]
    default_shared = next((c for c in candidates if c.is_dir()), candidates[0])
    parser.add_argument("--shared", type=Path, default=default_shared)
    parser.add_argument("--bin", default=str(ROOT / "target" / "debug" / "transbrief"))
    args = parser.parse_args()
    worst = max(cnndm(args.shared, args.bin), newstest(args.shared, args.bin))
    print(f"\nlargest difference overall: {worst:.2e}")
    sys.exit(0 if worst < 1e-6 else 1)


if __name__ == "__main__":
    main()
