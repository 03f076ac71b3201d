//! The Porter stemmer exactly as NLTK's `PorterStemmer()` runs it in its default
//! `NLTK_EXTENSIONS` mode, which is what Google's `rouge-score` uses with `use_stemmer=True`.
//!
//! The `rust-stemmers` crate implements Snowball English (Porter2), a different algorithm:
//! NLTK's own Snowball English stemmer disagrees with its Porter stemmer on 252 of the 11,444
//! distinct words of the shared dev sets (e.g. "generously" gives "generous", not "gener";
//! "fairly" gives "fair", not "fairli"), so ROUGE scores would drift from the published tool. Not for: the original 1980 algorithm or Martin Porter's own extensions
//! (NLTK's other modes), or any language but English.

/// Words NLTK maps to a fixed stem before running the algorithm.
const IRREGULAR: &[(&str, &str)] = &[
    ("sky", "sky"),
    ("skies", "sky"),
    ("dying", "die"),
    ("lying", "lie"),
    ("tying", "tie"),
    ("news", "news"),
    ("innings", "inning"),
    ("inning", "inning"),
    ("outings", "outing"),
    ("outing", "outing"),
    ("cannings", "canning"),
    ("canning", "canning"),
    ("howe", "howe"),
    ("proceed", "proceed"),
    ("exceed", "exceed"),
    ("succeed", "succeed"),
];

type Word = Vec<char>;

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// For each letter, whether it is a consonant: `y` is a consonant at the start or after a
/// vowel, a vowel after a consonant.
fn consonant_flags(word: &[char]) -> Vec<bool> {
    let mut flags: Vec<bool> = Vec::with_capacity(word.len());
    for (i, &c) in word.iter().enumerate() {
        let flag = if is_vowel(c) {
            false
        } else if c == 'y' {
            i == 0 || !flags[i - 1]
        } else {
            true
        };
        flags.push(flag);
    }
    flags
}

fn is_consonant(word: &[char], i: usize) -> bool {
    consonant_flags(&word[..=i])[i]
}

/// Porter's m: the number of vowel-consonant sequences.
fn measure(stem: &[char]) -> usize {
    let flags = consonant_flags(stem);
    flags.windows(2).filter(|w| !w[0] && w[1]).count()
}

fn contains_vowel(stem: &[char]) -> bool {
    consonant_flags(stem).iter().any(|&c| !c)
}

fn ends_double_consonant(word: &[char]) -> bool {
    let n = word.len();
    n >= 2 && word[n - 1] == word[n - 2] && is_consonant(word, n - 1)
}

/// *o: ends consonant-vowel-consonant, the last not w, x or y; NLTK also accepts a two-letter
/// vowel-consonant word.
fn ends_cvc(word: &[char]) -> bool {
    let n = word.len();
    (n >= 3
        && is_consonant(word, n - 3)
        && !is_consonant(word, n - 2)
        && is_consonant(word, n - 1)
        && !matches!(word[n - 1], 'w' | 'x' | 'y'))
        || (n == 2 && !is_consonant(word, 0) && is_consonant(word, 1))
}

fn ends_with(word: &[char], suffix: &str) -> bool {
    let n = suffix.chars().count();
    word.len() >= n && word[word.len() - n..].iter().copied().eq(suffix.chars())
}

/// `word` without its last `suffix.len()` letters, plus `replacement`.
fn replace_suffix(word: &[char], suffix: &str, replacement: &str) -> Word {
    let mut out = word[..word.len() - suffix.chars().count()].to_vec();
    out.extend(replacement.chars());
    out
}

/// A condition on the stem left once the suffix is removed.
type Condition<'a> = &'a dyn Fn(&[char]) -> bool;

/// What a rule matches: a literal suffix, or `*d`, any double consonant.
enum Suffix<'a> {
    Literal(&'a str),
    DoubleConsonant,
}

/// Applies the first rule whose suffix matches (and only that one, whether or not its condition
/// holds), as NLTK's `_apply_rule_list`.
fn apply_rules(word: &[char], rules: &[(Suffix, &str, Option<Condition>)]) -> Word {
    for (suffix, replacement, condition) in rules {
        let stem = match suffix {
            Suffix::DoubleConsonant if ends_double_consonant(word) => &word[..word.len() - 2],
            Suffix::Literal(s) if ends_with(word, s) => &word[..word.len() - s.chars().count()],
            _ => continue,
        };
        if condition.is_none_or(|c| c(stem)) {
            let mut out = stem.to_vec();
            out.extend(replacement.chars());
            return out;
        }
        return word.to_vec();
    }
    word.to_vec()
}

fn positive_measure(stem: &[char]) -> bool {
    measure(stem) > 0
}

/// Literal-suffix rules that all share one condition.
fn literal_rules<'a>(
    pairs: &[(&'a str, &'a str)],
    condition: Condition<'a>,
) -> Vec<(Suffix<'a>, &'a str, Option<Condition<'a>>)> {
    pairs
        .iter()
        .map(|&(s, r)| (Suffix::Literal(s), r, Some(condition)))
        .collect()
}

fn step1a(word: &[char]) -> Word {
    if ends_with(word, "ies") && word.len() == 4 {
        return replace_suffix(word, "ies", "ie");
    }
    let rules = [
        (Suffix::Literal("sses"), "ss", None),
        (Suffix::Literal("ies"), "i", None),
        (Suffix::Literal("ss"), "ss", None),
        (Suffix::Literal("s"), "", None),
    ];
    apply_rules(word, &rules)
}

fn step1b(word: &[char]) -> Word {
    if ends_with(word, "ied") {
        let replacement = if word.len() == 4 { "ie" } else { "i" };
        return replace_suffix(word, "ied", replacement);
    }
    if ends_with(word, "eed") {
        let stem = replace_suffix(word, "eed", "");
        return if measure(&stem) > 0 {
            replace_suffix(word, "eed", "ee")
        } else {
            word.to_vec()
        };
    }
    let Some(stem) = ["ed", "ing"]
        .iter()
        .filter(|s| ends_with(word, s))
        .map(|s| replace_suffix(word, s, ""))
        .find(|stem| contains_vowel(stem))
    else {
        return word.to_vec();
    };
    // `stem` contains a vowel, so it is not empty.
    let last = stem[stem.len() - 1];
    let last_str = last.to_string();
    let keep_double = move |_: &[char]| !matches!(last, 'l' | 's' | 'z');
    let add_e = |s: &[char]| measure(s) == 1 && ends_cvc(s);
    let rules: [(Suffix, &str, Option<Condition>); 5] = [
        (Suffix::Literal("at"), "ate", None),
        (Suffix::Literal("bl"), "ble", None),
        (Suffix::Literal("iz"), "ize", None),
        (Suffix::DoubleConsonant, &last_str, Some(&keep_double)),
        (Suffix::Literal(""), "e", Some(&add_e)),
    ];
    apply_rules(&stem, &rules)
}

fn step1c(word: &[char]) -> Word {
    let condition = |stem: &[char]| stem.len() > 1 && is_consonant(stem, stem.len() - 1);
    apply_rules(word, &[(Suffix::Literal("y"), "i", Some(&condition))])
}

fn step2(word: &[char]) -> Word {
    if ends_with(word, "alli") && positive_measure(&replace_suffix(word, "alli", "")) {
        return step2(&replace_suffix(word, "alli", "al"));
    }
    // NLTK's "logi" rule tests the word minus "ogi", not minus "logi".
    let logi = |_: &[char]| word.len() >= 3 && positive_measure(&word[..word.len() - 3]);
    let mut rules = literal_rules(
        &[
            ("ational", "ate"),
            ("tional", "tion"),
            ("enci", "ence"),
            ("anci", "ance"),
            ("izer", "ize"),
            ("bli", "ble"),
            ("alli", "al"),
            ("entli", "ent"),
            ("eli", "e"),
            ("ousli", "ous"),
            ("ization", "ize"),
            ("ation", "ate"),
            ("ator", "ate"),
            ("alism", "al"),
            ("iveness", "ive"),
            ("fulness", "ful"),
            ("ousness", "ous"),
            ("aliti", "al"),
            ("iviti", "ive"),
            ("biliti", "ble"),
            ("fulli", "ful"),
        ],
        &positive_measure,
    );
    rules.push((Suffix::Literal("logi"), "log", Some(&logi)));
    apply_rules(word, &rules)
}

fn step3(word: &[char]) -> Word {
    let rules = literal_rules(
        &[
            ("icate", "ic"),
            ("ative", ""),
            ("alize", "al"),
            ("iciti", "ic"),
            ("ical", "ic"),
            ("ful", ""),
            ("ness", ""),
        ],
        &positive_measure,
    );
    apply_rules(word, &rules)
}

fn step4(word: &[char]) -> Word {
    let gt1 = |stem: &[char]| measure(stem) > 1;
    let ion = |stem: &[char]| measure(stem) > 1 && matches!(stem.last(), Some('s' | 't'));
    let mut rules = literal_rules(
        &[
            ("al", ""),
            ("ance", ""),
            ("ence", ""),
            ("er", ""),
            ("ic", ""),
            ("able", ""),
            ("ible", ""),
            ("ant", ""),
            ("ement", ""),
            ("ment", ""),
            ("ent", ""),
        ],
        &gt1,
    );
    rules.push((Suffix::Literal("ion"), "", Some(&ion)));
    rules.extend(literal_rules(
        &[
            ("ou", ""),
            ("ism", ""),
            ("ate", ""),
            ("iti", ""),
            ("ous", ""),
            ("ive", ""),
            ("ize", ""),
        ],
        &gt1,
    ));
    apply_rules(word, &rules)
}

fn step5a(word: &[char]) -> Word {
    if ends_with(word, "e") {
        let stem = &word[..word.len() - 1];
        let m = measure(stem);
        if m > 1 || (m == 1 && !ends_cvc(stem)) {
            return stem.to_vec();
        }
    }
    word.to_vec()
}

fn step5b(word: &[char]) -> Word {
    // NLTK measures the word minus one "l", not the stem minus "ll".
    let condition = |_: &[char]| !word.is_empty() && measure(&word[..word.len() - 1]) > 1;
    apply_rules(word, &[(Suffix::Literal("ll"), "l", Some(&condition))])
}

/// Stems one word as `nltk.stem.PorterStemmer().stem(word)` does (lowercasing it first).
pub fn stem(word: &str) -> String {
    let lower = word.to_lowercase();
    if let Some((_, stem)) = IRREGULAR.iter().find(|(form, _)| *form == lower) {
        return (*stem).to_string();
    }
    if word.chars().count() <= 2 {
        return lower;
    }
    let mut w: Word = lower.chars().collect();
    for step in [step1a, step1b, step1c, step2, step3, step4, step5a, step5b] {
        w = step(&w);
    }
    w.into_iter().collect()
}
