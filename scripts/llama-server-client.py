#!/usr/bin/env python3
"""Sends every paragraph of a folder of French documents to a running llama-server at once.

Used by `scripts/bench --only server` (the llama-server row); standard library only. Each
paragraph (the blank-line-separated blocks of each NAME.fr.txt, whitespace joined) is one
chat request to /v1/chat/completions: the system prompt given with --system (scripts/bench
passes models.toml's `translate_system` of the model's prompt set) and the paragraph as the
user turn, rendered by the server with the GGUF's chat template; temperature 0 (greedy) and
max_tokens = min(3 * n + 64, --max-new) where n is the paragraph's token count (/tokenize),
the answer budget transbrief's chat backend gives a window of n source tokens.

All requests are sent together, one thread per paragraph: the server queues them into its
slots (-np). The timing runs from the first request sent to the last answer received (the
token counts are taken before it starts).

What differs from `transbrief run --only translate` on the same folder: transbrief cuts a
paragraph into windows of at most 128 source tokens (window_tokens) and shows the previous
window (its French and its English) as an earlier user/assistant exchange, so its prompts are
longer and more numerous; it checks each window's English and translates failed windows again
(those retries are in its output tokens). Here each paragraph is one request with no context
turn and no retry.

Prints one JSON line: {"paragraphs", "prompt_tokens", "output_tokens", "seconds", "tok_s",
"failed"}; with --out DIR it also writes each document's English to DIR/NAME.en.txt.

Usage: scripts/llama-server-client.py --url http://127.0.0.1:PORT --system-file F DOC.fr.txt...
"""

import argparse
import json
import sys
import threading
import time
import urllib.request
from pathlib import Path


def post(url, body, timeout):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


def paragraphs(path):
    text = Path(path).read_text(encoding="utf-8")
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--system-file", type=Path, required=True)
    ap.add_argument("--max-new", type=int, default=1024, help="the catalog's max_new_tokens")
    ap.add_argument("--timeout", type=float, default=7200.0, help="seconds per request")
    ap.add_argument("--out", type=Path, help="write each document's English here")
    ap.add_argument("docs", nargs="+", type=Path)
    a = ap.parse_args()
    system = a.system_file.read_text(encoding="utf-8")

    jobs = []  # (doc index, paragraph index, text)
    for d, path in enumerate(a.docs):
        for i, p in enumerate(paragraphs(path)):
            jobs.append((d, i, p))
    budgets = []
    for _, _, p in jobs:
        n = len(post(a.url + "/tokenize", {"content": p}, a.timeout)["tokens"])
        budgets.append(min(3 * n + 64, a.max_new))

    results = [None] * len(jobs)

    def one(k):
        body = {"messages": [{"role": "system", "content": system},
                             {"role": "user", "content": jobs[k][2]}],
                "temperature": 0.0, "max_tokens": budgets[k], "stream": False}
        try:
            results[k] = post(a.url + "/v1/chat/completions", body, a.timeout)
        except Exception as e:  # reported, not raised: the other requests go on
            results[k] = {"error": str(e)}

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(jobs))]
    t = time.time()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    seconds = time.time() - t

    prompt_tokens = output_tokens = failed = 0
    english = {}
    for (d, i, _), r in zip(jobs, results):
        if not r or "error" in r or "usage" not in r:
            failed += 1
            print(f"request for {a.docs[d].name} paragraph {i + 1} failed: {r}", file=sys.stderr)
            continue
        prompt_tokens += r["usage"]["prompt_tokens"]
        output_tokens += r["usage"]["completion_tokens"]
        english.setdefault(d, {})[i] = " ".join(r["choices"][0]["message"]["content"].split())
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        for d, paras in english.items():
            name = a.docs[d].name.removesuffix(".fr.txt") + ".en.txt"
            (a.out / name).write_text("\n\n".join(paras[i] for i in sorted(paras)) + "\n", encoding="utf-8")
    print(json.dumps({"paragraphs": len(jobs), "prompt_tokens": prompt_tokens, "output_tokens": output_tokens,
                      "seconds": seconds, "tok_s": output_tokens / seconds if seconds else 0.0,
                      "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
