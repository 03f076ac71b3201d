#!/usr/bin/env python3
"""Writes tests/fixtures/eval/expected.json: the scores the reference implementations give on the
committed texts in tests/fixtures/eval/, which tests/eval_metrics.rs requires transbrief to match.

    pip install sacrebleu==2.6.0 rouge-score==0.1.2 nltk
    python3 scripts/make-eval-fixtures.py

Line sets (NAME.hyp.txt / NAME.ref.txt, one segment per line): sacrebleu corpus BLEU, chrF and
TER with their signatures, BLEU with effective order over the set (transbrief's per-document
BLEU), and per line sentence BLEU, chrF, TER and rouge-score ROUGE-1/2/L/Lsum (use_stemmer=True).
The paragraph set is cut into blank-line blocks, as `transbrief eval` does without --by-line.
Brief sets (brief-N.*.txt): each file is one segment, its non-blank lines the sentences.
Stems: NLTK's PorterStemmer on stem-words.txt and on every token of the texts.
"""
import json
import sys
from importlib.metadata import version
from pathlib import Path

import sacrebleu
from nltk.stem.porter import PorterStemmer
from rouge_score import rouge_scorer
from rouge_score import tokenize as rouge_tokenize
from sacrebleu.metrics import BLEU, CHRF, TER

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "eval"
LINE_SETS = ["news", "short", "empty", "reordered", "long", "scrambled", "unicode"]
PARAGRAPH_SETS = ["paragraphs"]
BRIEF_SETS = ["brief-1", "brief-2", "brief-3"]
ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
SCORER = rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=True)


def read(path):
    return path.read_text(encoding="utf-8")


def lines(text):
    """Lines as Rust's str::lines() gives them (no final empty line after a trailing newline)."""
    parts = text.split("\n")
    if text.endswith("\n"):
        parts.pop()
    return parts


def paragraphs(text):
    """Blocks of non-blank stripped lines, each joined by newlines."""
    blocks, block = [], []
    for line in lines(text):
        line = line.strip()
        if line:
            block.append(line)
        elif block:
            blocks.append("\n".join(block))
            block = []
    if block:
        blocks.append("\n".join(block))
    return blocks


def one_line(segment):
    return segment.replace("\n", " ")


def bleu_dict(score, signature):
    return {
        "score": score.score,
        "counts": list(score.counts),
        "totals": list(score.totals),
        "precisions": list(score.precisions),
        "bp": score.bp,
        "hyp_len": score.sys_len,
        "ref_len": score.ref_len,
        "signature": signature,
    }


def rouge_dict(ref, hyp):
    s = SCORER.score(ref, hyp)
    return {k: {"precision": s[k].precision, "recall": s[k].recall, "fmeasure": s[k].fmeasure}
            for k in ROUGE_TYPES}


def rouge_mean(per_segment):
    out = {}
    for k in ROUGE_TYPES:
        out[k] = {m: sum(seg[k][m] for seg in per_segment) / len(per_segment)
                  for m in ("precision", "recall", "fmeasure")}
    return out


def score_set(hyps, refs):
    """Everything the Rust tests compare for one set of aligned segments."""
    assert len(hyps) == len(refs), (len(hyps), len(refs))
    flat_h = [one_line(h) for h in hyps]
    flat_r = [one_line(r) for r in refs]
    bleu = BLEU()
    corpus_bleu = bleu.corpus_score(flat_h, [flat_r])
    doc_bleu_metric = BLEU(effective_order=True)
    doc_bleu = doc_bleu_metric.corpus_score(flat_h, [flat_r])
    chrf = CHRF()
    corpus_chrf = chrf.corpus_score(flat_h, [flat_r])
    ter = TER()
    corpus_ter = ter.corpus_score(flat_h, [flat_r])
    per_rouge = [rouge_dict(r, h) for h, r in zip(hyps, refs)]
    return {
        "hyps": hyps,
        "refs": refs,
        "corpus_bleu": bleu_dict(corpus_bleu, str(bleu.get_signature())),
        "document_bleu": bleu_dict(doc_bleu, str(doc_bleu_metric.get_signature())),
        "corpus_chrf": {"score": corpus_chrf.score, "signature": str(chrf.get_signature())},
        "corpus_ter": {
            "score": corpus_ter.score,
            "num_edits": corpus_ter.num_edits,
            "ref_length": corpus_ter.ref_length,
            "signature": str(ter.get_signature()),
        },
        "sentence_bleu": [sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(flat_h, flat_r)],
        "sentence_chrf": [sacrebleu.sentence_chrf(h, [r]).score for h, r in zip(flat_h, flat_r)],
        "sentence_ter": [sacrebleu.sentence_ter(h, [r]).score for h, r in zip(flat_h, flat_r)],
        "rouge": per_rouge,
        "rouge_mean": rouge_mean(per_rouge),
    }


def brief_text(text):
    return "\n".join(line.strip() for line in lines(text) if line.strip())


def main():
    sets = {}
    texts = []
    for name in LINE_SETS:
        hyp, ref = read(FIXTURES / f"{name}.hyp.txt"), read(FIXTURES / f"{name}.ref.txt")
        texts += [hyp, ref]
        sets[name] = score_set(lines(hyp), lines(ref))
        sets[name]["split"] = "lines"
    for name in PARAGRAPH_SETS:
        hyp, ref = read(FIXTURES / f"{name}.hyp.txt"), read(FIXTURES / f"{name}.ref.txt")
        texts += [hyp, ref]
        sets[name] = score_set(paragraphs(hyp), paragraphs(ref))
        sets[name]["split"] = "paragraphs"
    for name in BRIEF_SETS:
        hyp, ref = read(FIXTURES / f"{name}.hyp.txt"), read(FIXTURES / f"{name}.ref.txt")
        texts += [hyp, ref]
        sets[name] = score_set([brief_text(hyp)], [brief_text(ref)])
        sets[name]["split"] = "document"

    words = set(read(FIXTURES / "stem-words.txt").split())
    for text in texts:
        words.update(rouge_tokenize.tokenize(text, None))
    stemmer = PorterStemmer()
    stems = {w: stemmer.stem(w) for w in sorted(words)}

    expected = {
        "generated_by": "scripts/make-eval-fixtures.py",
        "versions": {p: version(p) for p in ("sacrebleu", "rouge-score", "nltk")},
        "sets": sets,
        "stems": stems,
    }
    out = FIXTURES / "expected.json"
    out.write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}: {len(sets)} sets, {len(stems)} stems", file=sys.stderr)


if __name__ == "__main__":
    main()
