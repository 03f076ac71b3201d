//! Logits processors, applied to one hypothesis' next-token scores in transformers' order:
//! repetition penalty, no-repeat n-grams, bad words, min length, forced BOS, forced EOS. Each
//! sees the decoder ids so far, start token included, as transformers' `input_ids` does.
//! Not for: sampling warpers (temperature, top-k/p), which this crate does not use.

use super::GenerationConfig;

/// The processors a [`GenerationConfig`] asks for.
pub(crate) struct Processors {
    repetition_penalty: Option<f32>,
    no_repeat_ngram_size: usize,
    /// Bad word sequences, without the single-token sequences that are an EOS token.
    bad_words: Vec<Vec<u32>>,
    min_length: usize,
    eos: Vec<u32>,
    forced_bos: Option<u32>,
    forced_eos: Vec<u32>,
    max_length: usize,
}

impl Processors {
    pub(crate) fn new(config: &GenerationConfig) -> Self {
        let eos = config.eos_token_id.clone();
        let bad_words = config
            .bad_words_ids
            .iter()
            .flatten()
            .filter(|seq| !(seq.len() == 1 && eos.contains(&seq[0])))
            .filter(|seq| !seq.is_empty())
            .cloned()
            .collect();
        Self {
            repetition_penalty: (config.repetition_penalty != 1.0)
                .then_some(config.repetition_penalty),
            no_repeat_ngram_size: config.no_repeat_ngram_size,
            bad_words,
            min_length: config.min_length,
            eos,
            forced_bos: config.forced_bos_token_id,
            forced_eos: config.forced_eos_token_id.clone(),
            max_length: config.max_length,
        }
    }

    /// Processes `scores` (one entry per vocabulary id) for the hypothesis `seq`.
    pub(crate) fn apply(&self, seq: &[u32], scores: &mut [f32]) {
        if let Some(penalty) = self.repetition_penalty {
            repetition_penalty(seq, scores, penalty);
        }
        if self.no_repeat_ngram_size > 0 {
            for token in banned_ngram_tokens(seq, self.no_repeat_ngram_size) {
                ban(scores, token);
            }
        }
        for word in &self.bad_words {
            let (last, prefix) = word
                .split_last()
                .unwrap_or_else(|| unreachable!("non-empty"));
            if seq.ends_with(prefix) {
                ban(scores, *last);
            }
        }
        if seq.len() < self.min_length {
            for &eos in &self.eos {
                ban(scores, eos);
            }
        }
        if let Some(bos) = self.forced_bos {
            if seq.len() == 1 {
                force(scores, &[bos]);
            }
        }
        if !self.forced_eos.is_empty() && seq.len() + 1 == self.max_length {
            force(scores, &self.forced_eos);
        }
    }
}

fn ban(scores: &mut [f32], token: u32) {
    if let Some(s) = scores.get_mut(token as usize) {
        *s = f32::NEG_INFINITY;
    }
}

/// Sets every score to -inf except `allowed`, which get 0.
fn force(scores: &mut [f32], allowed: &[u32]) {
    scores.fill(f32::NEG_INFINITY);
    for &token in allowed {
        if let Some(s) = scores.get_mut(token as usize) {
            *s = 0.0;
        }
    }
}

/// Each distinct token already in `seq` has its score divided by `penalty` when positive and
/// multiplied by it when negative.
fn repetition_penalty(seq: &[u32], scores: &mut [f32], penalty: f32) {
    let mut seen = std::collections::HashSet::with_capacity(seq.len());
    for &token in seq {
        if !seen.insert(token) {
            continue;
        }
        if let Some(s) = scores.get_mut(token as usize) {
            *s = if *s < 0.0 { *s * penalty } else { *s / penalty };
        }
    }
}

/// Tokens that would complete an n-gram already present in `seq`.
fn banned_ngram_tokens(seq: &[u32], n: usize) -> Vec<u32> {
    if seq.len() < n {
        return Vec::new();
    }
    let prefix = &seq[seq.len() + 1 - n..];
    seq.windows(n)
        .filter(|w| &w[..n - 1] == prefix)
        .map(|w| w[n - 1])
        .collect()
}

/// Index of the largest score, the first one on ties (as `torch.argmax`).
pub(crate) fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngram_bans_only_completions_of_the_current_prefix() {
        // 2-grams: (1,2) (2,3) (3,1); the prefix is [1], so 2 is banned.
        assert_eq!(banned_ngram_tokens(&[1, 2, 3, 1], 2), vec![2]);
        // 3-grams with prefix [3,1]: none seen before.
        assert!(banned_ngram_tokens(&[1, 2, 3, 1], 3).is_empty());
        assert_eq!(banned_ngram_tokens(&[3, 1, 4, 3, 1], 3), vec![4]);
    }

    #[test]
    fn repetition_penalty_counts_each_token_once() {
        let mut scores = vec![2.0, -2.0, 1.0];
        repetition_penalty(&[0, 0, 1], &mut scores, 2.0);
        assert_eq!(scores, vec![1.0, -4.0, 1.0]);
    }

    #[test]
    fn forced_tokens_and_min_length() {
        let config = GenerationConfig {
            eos_token_id: vec![0],
            min_length: 3,
            forced_bos_token_id: Some(2),
            max_length: 4,
            forced_eos_token_id: vec![0],
            ..Default::default()
        };
        let p = Processors::new(&config);
        let mut s = vec![1.0; 4];
        p.apply(&[5], &mut s);
        assert_eq!(
            s,
            vec![f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY]
        );
        let mut s = vec![1.0; 4];
        p.apply(&[5, 2], &mut s);
        assert_eq!(s, vec![f32::NEG_INFINITY, 1.0, 1.0, 1.0]);
        let mut s = vec![1.0; 4];
        p.apply(&[5, 2, 3], &mut s);
        assert_eq!(
            s,
            vec![0.0, f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY]
        );
    }
}
