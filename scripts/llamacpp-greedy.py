#!/usr/bin/env python3
"""Greedy decoding references from llama.cpp, for tests/gguf_parity.rs.

Usage: scripts/llamacpp-greedy.py MODEL.gguf OUT.json [--prompts FILE] [--steps N] [--first K]

Loads MODEL.gguf with llama.cpp through llama-cpp-python (n_ctx 256, n_batch 256, 2 threads,
f32 KV cache, no flash attention, the library's defaults otherwise), tokenizes every line of FILE (default
tests/fixtures/gemma_prompts_fr.txt; plain text, one prompt per line, lines starting with '#'
skipped) as llama.cpp does for that model, `tokenize(text, add_bos=True, special=False)`, which
adds BOS only when the file's `tokenizer.ggml.add_bos_token` says so, then decodes N steps
(default 64) greedily: argmax of the last logits, end-of-generation tokens ignored. Writes per
prompt the prompt ids, the N greedy ids and, per step, the margin between the top-1 and top-2
logits and llama.cpp's 5 best ids with their logits, with the GGUF's sha256 and the
llama-cpp-python version. With --first K only the first K prompts of FILE are decoded.

It also records how far llama.cpp agrees with itself: the same greedy decoding with the prompt
fed one token at a time instead of in one batch (both are correct; they round differently), and
the first step where the two part, per prompt. On a real model with quantized weights, tiny
rounding differences change the quantized activations and grow from layer to layer, so two
correct implementations part ways at near ties; this baseline says how often that happens to
llama.cpp itself.

The fixture was made with (the seeded Gemma 3 270M, see ../shared/models/seed-hf-cache):
  scripts/llamacpp-greedy.py \\
      ~/.cache/huggingface/hub/models--hugginllam--gemma-3-270m-Q4_K_M-GGUF/snapshots/*/gemma-3-270m-q4_k_m.gguf \\
      tests/fixtures/llamacpp_greedy_gemma-3-270m.json --first 20

scripts/make-gguf-fixtures uses `greedy` from here for the tiny random-weight models.

Like scripts/bench, it re-runs itself in target/bench-venv of its own checkout (creating it and
installing the pinned llama-cpp-python and gguf there) unless the running Python already has
those exact versions.
"""

import argparse
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "bench-venv"
PINS = {"llama-cpp-python": "0.3.36", "gguf": "0.19.0"}


def ensure_venv(script):
    """Re-runs `script` in target/bench-venv unless this Python already has the pinned packages."""
    try:
        if all(importlib.metadata.version(p) == v for p, v in PINS.items()):
            return
    except importlib.metadata.PackageNotFoundError:
        pass
    if Path(sys.prefix).resolve() == VENV.resolve():
        sys.exit(f"{VENV} lacks {PINS}: remove it and re-run")
    py = VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(VENV)], check=True)
    probe = ("import importlib.metadata as m, sys; "
             f"sys.exit(any(m.version(p) != v for p, v in {PINS!r}.items()))")
    if subprocess.run([str(py), "-c", probe], capture_output=True).returncode != 0:
        print("installing llama-cpp-python and gguf from PyPI (llama-cpp-python compiles llama.cpp: "
              "minutes)", file=sys.stderr)
        subprocess.run([str(py), "-m", "pip", "install", "-q"] + [f"{p}=={v}" for p, v in PINS.items()],
                       check=True)
    os.execv(str(py), [str(py), str(script)] + sys.argv[1:])


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(model, n_ctx):
    """llama.cpp on `model`, as the fixtures were made: 2 threads, one batch for the prompt, and
    an f32 KV cache. llama.cpp's default f16 cache alone moved the tiny qwen2 fixture's logits by
    1% of their spread (0.32 of 32), which is more than some greedy margins; transbrief keeps
    its cache in f32, and with llama.cpp's in f32 the two agree to about 1e-5."""
    import llama_cpp
    f32 = llama_cpp.GGML_TYPE_F32
    return llama_cpp.Llama(model_path=str(model), n_ctx=n_ctx, n_batch=n_ctx, n_threads=2,
                           n_threads_batch=2, type_k=f32, type_v=f32, flash_attn=False,
                           logits_all=False, verbose=False)


def greedy(llm, prompt, steps, one_by_one=False, top_out=None):
    """Feeds `prompt` (ids) from position 0 (in one batch, or one token at a time), then decodes
    `steps` tokens greedily, EOS ignored.

    Returns (ids, margins, spreads, first_logits): per step the chosen id, the top-1 minus top-2
    logit, and the max minus min logit; first_logits are the logits after the prompt. With a
    list `top_out`, appends per step the 5 best [id, logit] pairs to it.
    """
    import numpy as np
    n_vocab = llm.n_vocab()
    llm.reset()
    if one_by_one:
        for t in prompt:
            llm.eval([t])
    else:
        llm.eval(prompt)
    ids, margins, spreads, first = [], [], [], None
    for step in range(steps):
        # llama-cpp-python 0.3 keeps all positions' logits in `scores` only with logits_all=True;
        # the context holds the last position's (as scripts/bench reads them).
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).astype(np.float64)
        if first is None:
            first = logits.copy()
        top = int(np.argmax(logits))
        second = np.partition(logits, -2)[-2]
        if top_out is not None:
            best = np.argsort(-logits)[:5]
            top_out.append([[int(i), round(float(logits[i]), 4)] for i in best])
        ids.append(top)
        margins.append(float(logits[top] - second))
        spreads.append(float(logits.max() - logits.min()))
        if step < steps - 1:
            llm.eval([top])
    return ids, margins, spreads, first


def dump(result):
    """JSON with one line per key and one line per case: small, and diffs stay readable."""
    lines = []
    for key, value in result.items():
        if key == "cases":
            cases = ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in value)
            lines.append(f' "cases": [\n{cases}\n ]')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def read_prompts(path):
    return [line for line in Path(path).read_text(encoding="utf-8").split("\n")
            if line.strip() and not line.startswith("#")]


def main():
    ensure_venv(__file__)
    import llama_cpp
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--prompts", default=str(ROOT / "tests" / "fixtures" / "gemma_prompts_fr.txt"))
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--first", type=int, help="decode only the first K prompts of the file")
    args = parser.parse_args()
    n_ctx = 256
    llm = load(args.model, n_ctx)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llm._model.vocab))
    cases = []
    prompts = read_prompts(args.prompts)
    if args.first is not None:
        prompts = prompts[:args.first]
    for text in prompts:
        prompt = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if len(prompt) + args.steps > n_ctx:
            sys.exit(f"prompt too long for n_ctx {n_ctx}: {text!r}")
        top = []
        ids, margins, _, _ = greedy(llm, prompt, args.steps, top_out=top)
        again, _, _, _ = greedy(llm, prompt, args.steps, one_by_one=True)
        parts = next((k for k, (a, b) in enumerate(zip(ids, again)) if a != b), None)
        cases.append({"text": text, "prompt_ids": prompt, "greedy_ids": ids,
                      "margins": [round(m, 4) for m in margins], "top5": top,
                      "self_parts_at": parts})
        print(f"{len(prompt):3} prompt ids, min margin {min(margins):.4f}, llama.cpp token by token "
              f"parts at {parts}: {text[:60]}", file=sys.stderr)
    result = {
        "gguf": Path(args.model).name,
        "sha256": sha256(args.model),
        "llama_cpp_python": llama_cpp.__version__,
        "call": "tokenize(text, add_bos=True, special=False); eval(prompt); then argmax and eval([id]) "
                f"{args.steps} times, EOS ignored; n_ctx {n_ctx}, 2 threads, f32 KV cache, no flash attention",
        "add_bos": add_bos,
        "bos": llm.token_bos(),
        "steps": args.steps,
        "prompts": len(cases),
        "self_agreeing_prompts": sum(c["self_parts_at"] is None for c in cases),
        "cases": cases,
    }
    Path(args.out).write_text(dump(result), encoding="utf-8")
    print(f"{args.out}: {len(cases)} prompts x {args.steps} greedy steps")


if __name__ == "__main__":
    main()
