#!/usr/bin/env python3
"""Reference token ids from llama.cpp, for tests/gguf_tokenizer.rs.

Usage: scripts/llamacpp-token-ids.py MODEL.gguf OUT.json [TEXTS]

Tokenizes every text of TEXTS (default: tests/fixtures/tokenizer_texts.txt, one JSON string per
line, lines starting with '#' are comments) with llama.cpp through llama-cpp-python, loading only
the vocabulary of MODEL.gguf, as ordinary text: no BOS, special tokens not parsed
(add_bos=False, special=False). Writes the ids per text, with the GGUF's sha256 and the
llama-cpp-python version, to OUT.json; also the ids llama.cpp gives to a few control tokens
(parsed with special=True), bos/eos, and its end-of-generation (eog) ids.

Needs: pip install llama-cpp-python (builds llama.cpp from source).
"""

import hashlib
import json
import sys
from pathlib import Path

import llama_cpp


SPECIAL_TEXTS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|eot_id|>", "<end_of_turn>"]


def read_texts(path):
    texts = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
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


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    model, out = sys.argv[1], sys.argv[2]
    texts_path = sys.argv[3] if len(sys.argv) == 4 else "tests/fixtures/tokenizer_texts.txt"
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    cases = []
    for text in read_texts(texts_path):
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        cases.append({"text": text, "ids": ids})
    # Control tokens parsed as such (special=True), to check GgufTokenizer::special.
    specials = {}
    for text in SPECIAL_TEXTS:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if len(ids) == 1:
            specials[text] = ids[0]
    vocab = llm._model.vocab
    eog = [i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)]
    result = {
        "gguf": Path(model).name,
        "sha256": sha256(model),
        "llama_cpp_python": llama_cpp.__version__,
        "call": "tokenize(text, add_bos=False, special=False)",
        "bos": llm.token_bos(),
        "eos": llm.token_eos(),
        "eog": eog,
        "n_vocab": llm.n_vocab(),
        "specials": specials,
        "cases": cases,
    }
    Path(out).write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{out}: {len(cases)} texts, {sum(len(c['ids']) for c in cases)} ids")


if __name__ == "__main__":
    main()
