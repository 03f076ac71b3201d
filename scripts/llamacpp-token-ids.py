#!/usr/bin/env python3
"""Reference token ids from llama.cpp, for tests/gguf_tokenizer.rs.

Usage: scripts/llamacpp-token-ids.py MODEL.gguf OUT.json [--texts TEXTS] [--logits]

Tokenizes every text of TEXTS (default: tests/fixtures/tokenizer_texts.txt, one JSON string per
line, lines starting with '#' are comments) with llama.cpp through llama-cpp-python, loading only
the vocabulary of MODEL.gguf, as ordinary text: no BOS, special tokens not parsed
(add_bos=False, special=False). Writes the ids per text, with the GGUF's sha256 and the
llama-cpp-python version, to OUT.json; also the ids llama.cpp gives to a few control tokens
(parsed with special=True), bos/eos, and its end-of-generation (eog) ids.

With --logits it also loads the weights and records llama.cpp's logits at the last position of
the first text (meant for the test kit's tiny model, whose vocabulary is small).

Needs: pip install llama-cpp-python (builds llama.cpp from source).
Fixtures in tests/fixtures were made with:
  scripts/llamacpp-token-ids.py $HF_CACHE/.../qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
      tests/fixtures/llamacpp_ids_qwen2.5-coder-0.5b.json          (same for the 1.5B)
  cargo run --example write_tiny_gguf -- /tmp/tiny42.gguf 42
  scripts/llamacpp-token-ids.py /tmp/tiny42.gguf tests/fixtures/llamacpp_ids_tiny-qwen2-seed42.json --logits
  for pre in llama-bpe gpt-2 default; do
    cargo run --example write_tiny_gguf -- /tmp/tiny-$pre.gguf 42 $pre
    scripts/llamacpp-token-ids.py /tmp/tiny-$pre.gguf tests/fixtures/llamacpp_ids_tiny-qwen2-pre-$pre.json
  done
  cargo run --example write_tiny_gguf -- --spm-vocab /tmp/spm.gguf
  scripts/llamacpp-token-ids.py /tmp/spm.gguf tests/fixtures/llamacpp_ids_tiny-spm-vocab.json
  scripts/llamacpp-token-ids.py \
      $HF_CACHE/models--hugginllam--gemma-3-270m-Q4_K_M-GGUF/snapshots/*/gemma-3-270m-q4_k_m.gguf \
      tests/fixtures/llamacpp_ids_gemma-3-270m.json
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import llama_cpp


SPECIAL_TEXTS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<s>",
    "</s>",
    "<unk>",
]


def read_texts(path):
    texts = []
    # Only "\n" ends a line: str.splitlines would also split at U+0085 and U+2028 inside texts.
    for line in Path(path).read_text(encoding="utf-8").split("\n"):
        if not line.strip() or line.startswith("#"):
            continue
        texts.append(json.loads(line))
    return texts


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dump(result):
    """JSON with one line per key and one line per test case: small, and diffs stay readable."""
    lines = []
    for key, value in result.items():
        if key == "cases":
            cases = ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in value)
            lines.append(f' "cases": [\n{cases}\n ]')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def last_logits(model, ids):
    """llama.cpp's logits after feeding `ids` from position 0, at the last position."""
    llm = llama_cpp.Llama(
        model_path=model, n_ctx=len(ids) + 8, n_threads=1, logits_all=True, verbose=False
    )
    llm.eval(ids)
    return {"ids": ids, "last": [float(x) for x in llm.scores[len(ids) - 1]]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--texts", default="tests/fixtures/tokenizer_texts.txt")
    parser.add_argument("--logits", action="store_true")
    args = parser.parse_args()
    model, out = args.model, args.out
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    cases = []
    for text in read_texts(args.texts):
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        cases.append({"text": text, "ids": ids})
    # Control tokens parsed as such (special=True), to check GgufTokenizer::special.
    vocab = llm._model.vocab
    specials = {}
    for text in SPECIAL_TEXTS:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if len(ids) == 1 and llama_cpp.llama_vocab_is_control(vocab, ids[0]):
            specials[text] = ids[0]
    eog = [i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)]
    result = {
        "gguf": Path(model).name,
        "sha256": sha256(model),
        "llama_cpp_python": llama_cpp.__version__,
        "call": "tokenize(text, add_bos=False, special=False)",
        "bos": llm.token_bos(),
        "eos": llm.token_eos(),
        "pad": llama_cpp.llama_vocab_pad(vocab),
        "eog": eog,
        "n_vocab": llm.n_vocab(),
        "specials": specials,
        "cases": cases,
    }
    if args.logits:
        result["logits"] = last_logits(model, cases[0]["ids"])
    Path(out).write_text(dump(result), encoding="utf-8")
    print(f"{out}: {len(cases)} texts, {sum(len(c['ids']) for c in cases)} ids")


if __name__ == "__main__":
    main()
