//! Splits text into paragraphs and French sentences, as byte ranges into the input.
//!
//! The sentence splitter is rule-based and tuned for French prose (news, reports, letters):
//! a sentence ends after `.`, `!`, `?` or `…` (a run of them, then any closing quotes or brackets)
//! when whitespace and then an uppercase letter, a digit, an opening quote or a dash follow, unless
//! the period belongs to an abbreviation (`M.`, `Mme`, `cf.`, `janv. 2024`), an initial (`J.-P.`,
//! `G. W. Bush`) or an elision (`[…]`).
//!
//! Known trade-offs: a single capital letter before a period is taken for an initial, so
//! "la vitamine C. Elle" stays one sentence (except "J.-C."); a sentence opening with `(` is not
//! split off; a line break alone never ends a sentence (text is often hard-wrapped).
//!
//! Not for: tokenizing, or languages other than French (English text mostly works, but its
//! abbreviations are not listed), nor for Markdown structure (see [`super::markdown`]).

/// Byte offsets into the input, always on `char` boundaries.
pub type Span = std::ops::Range<usize>;

/// Paragraphs: blocks of lines separated by one or more blank lines (empty or whitespace-only).
/// Each span is trimmed: it starts at the block's first non-whitespace character and ends after
/// its last, so it excludes the separators, blank lines and indentation around the block.
pub fn paragraphs(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut block: Option<Span> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let line_start = pos;
        pos += line.len();
        if line.trim().is_empty() {
            out.extend(block.take());
            continue;
        }
        let content_end = line_start + line.trim_end().len();
        match &mut block {
            Some(b) => b.end = content_end,
            None => {
                let lead = line.len() - line.trim_start().len();
                block = Some(line_start + lead..content_end);
            }
        }
    }
    out.extend(block);
    out
}

/// French sentences of one paragraph (or any text). The spans are contiguous and cover the
/// whole input: concatenating `paragraph[s]` over all spans gives back `paragraph` exactly.
/// Whitespace after a sentence belongs to it; whitespace before the first sentence belongs to the
/// first. An empty input has no sentences.
pub fn sentences(paragraph: &str) -> Vec<Span> {
    let text = paragraph;
    if text.is_empty() {
        return Vec::new();
    }
    let mut starts = vec![0];
    let mut i = 0;
    while let Some(c) = char_at(text, i) {
        if !is_terminal(c) {
            i += c.len_utf8();
            continue;
        }
        let run_end = skip_while(text, i, is_terminal);
        let after_closers = skip_closers(text, run_end);
        let next = skip_while(text, after_closers, char::is_whitespace);
        if next > after_closers {
            if let Some(first) = char_at(text, next) {
                if starts_sentence(first) && !keeps_going(text, i, run_end, first) {
                    starts.push(next);
                }
            }
        }
        i = after_closers;
    }
    let ends = starts[1..].iter().copied().chain([text.len()]);
    starts.iter().zip(ends).map(|(&s, e)| s..e).collect()
}

/// The character starting at byte `i`, if any.
fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..)?.chars().next()
}

/// The character ending at byte `i`, if any.
fn char_before(text: &str, i: usize) -> Option<char> {
    text.get(..i)?.chars().next_back()
}

/// The first byte at or after `i` whose character does not satisfy `f` (or the end).
fn skip_while(text: &str, i: usize, f: impl Fn(char) -> bool) -> usize {
    let rest = &text[i..];
    i + rest.find(|c| !f(c)).unwrap_or(rest.len())
}

fn is_terminal(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

/// Spaces that may sit between a word and French punctuation or guillemets.
fn is_inline_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{A0}' | '\u{202F}' | '\u{2009}')
}

/// Skips closing quotes and brackets after a punctuation run. Straight quotes and brackets close
/// only when glued to the punctuation; typographic closing quotes may follow a (French) space,
/// as in `« Bonjour. »`. Returns the byte after the last closer.
fn skip_closers(text: &str, mut j: usize) -> usize {
    loop {
        match char_at(text, j) {
            Some(c @ (')' | ']' | '}' | '»' | '”' | '’' | '›' | '"' | '\'')) => {
                j += c.len_utf8();
                continue;
            }
            Some(c) if is_inline_space(c) => {}
            _ => return j,
        }
        let k = skip_while(text, j, is_inline_space);
        match char_at(text, k) {
            Some(c @ ('»' | '”' | '›')) => j = k + c.len_utf8(),
            _ => return j,
        }
    }
}

fn starts_sentence(c: char) -> bool {
    c.is_uppercase()
        || c.is_numeric()
        || matches!(
            c,
            '«' | '“' | '„' | '‘' | '‹' | '"' | '\'' | '-' | '–' | '—'
        )
}

/// Titles before a name: never end a sentence.
const TITLES: &[&str] = &[
    "M", "MM", "Mme", "Mmes", "Mlle", "Mlles", "Dr", "Drs", "Pr", "Me", "Mgr", "Mr", "St", "Ste",
    "Sts", "Stes", "Prof", "Gén", "Cdt", "Col", "Lt", "Cne", "Sgt",
];

/// Abbreviations (compared in lowercase) that never end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "cf", "ex", "env", "av", "apr", "chap", "fig", "éd", "coll", "tél", "bd", "boul", "pp", "ibid",
    "op", "cit", "resp", "vs",
];

/// Abbreviations (compared in lowercase) that are also ordinary words ("sept", "vol", "art"):
/// they only hold the sentence together before a number, as in `12 sept. 2024`, `art. 3`.
const BEFORE_NUMBERS: &[&str] = &[
    "janv", "févr", "fév", "avr", "juil", "sept", "oct", "nov", "déc", "vol", "art", "no", "nos",
    "al",
];

/// Single lowercase letters that are French words and may end a sentence ("il y en a.").
const ONE_LETTER_WORDS: &[char] = &['a', 'à', 'y', 'ô'];

/// Longest abbreviation looked at; longer words are never abbreviations.
const MAX_ABBREVIATION_CHARS: usize = 8;

/// Whether the punctuation run `text[run_start..run_end]`, followed by whitespace and `next`,
/// is part of the sentence rather than its end.
fn keeps_going(text: &str, run_start: usize, run_end: usize, next: char) -> bool {
    // An elision in brackets: "Il a dit […] Les".
    if matches!(char_before(text, run_start), Some('(' | '[')) {
        return true;
    }
    if &text[run_start..run_end] != "." {
        return false;
    }
    // The word right before the period, if short enough to be an abbreviation.
    let mut w = run_start;
    let mut letters = 0;
    while let Some(c) = char_before(text, w).filter(|c| c.is_alphabetic()) {
        if letters == MAX_ABBREVIATION_CHARS {
            return false;
        }
        w -= c.len_utf8();
        letters += 1;
    }
    let word = &text[w..run_start];
    if word.is_empty() {
        return false;
    }
    let lower = word.to_lowercase();
    if lower == "etc" {
        // "etc." ends a sentence only before a capitalized word.
        return !next.is_uppercase();
    }
    if TITLES.contains(&word) || ABBREVIATIONS.contains(&lower.as_str()) {
        return true;
    }
    if BEFORE_NUMBERS.contains(&lower.as_str()) && next.is_numeric() {
        return true;
    }
    let mut chars = word.chars();
    match (chars.next(), chars.next()) {
        // Initials: "J.-P. Sartre", "G. W. Bush". "J.-C." (Jésus-Christ) is not one.
        (Some(c), None) if c.is_uppercase() => !(c == 'C' && text[..w].ends_with("J.-")),
        // Dotted abbreviations: "c.-à-d.", "p.ex.", "i.e.", and "p. 12".
        (Some(c), None) => {
            matches!(char_before(text, w), Some('.' | '-')) || !ONE_LETTER_WORDS.contains(&c)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::testgen::for_each_case;

    fn split(text: &str) -> Vec<&str> {
        sentences(text).into_iter().map(|s| &text[s]).collect()
    }

    fn paras(text: &str) -> Vec<&str> {
        paragraphs(text).into_iter().map(|s| &text[s]).collect()
    }

    #[test]
    fn paragraphs_are_blank_line_separated_and_trimmed() {
        let text = "\n\n  Premier paragraphe,\nsur deux lignes.  \n \t\n\nDeuxième.\n\n   \n";
        assert_eq!(
            paras(text),
            ["Premier paragraphe,\nsur deux lignes.", "Deuxième."]
        );
        assert!(paragraphs("").is_empty());
        assert!(paragraphs(" \n\t\n").is_empty());
        assert_eq!(paras("seul"), ["seul"]);
        assert_eq!(paras("a\r\n\r\nb\r\n"), ["a", "b"]);
    }

    #[test]
    fn plain_sentences() {
        assert_eq!(
            split("Le gouvernement a présenté son budget. Les syndicats protestent ! Pourquoi ? Personne ne le sait."),
            [
                "Le gouvernement a présenté son budget. ",
                "Les syndicats protestent ! ",
                "Pourquoi ? ",
                "Personne ne le sait.",
            ]
        );
    }

    #[test]
    fn no_punctuation_is_one_sentence() {
        let line = "une ligne sans aucune ponctuation qui continue encore";
        assert_eq!(split(line), [line]);
        assert!(sentences("").is_empty());
        assert_eq!(split("   "), ["   "]);
    }

    #[test]
    fn titles_and_abbreviations() {
        assert_eq!(
            split("M. Dupont et Mme Martin ont rencontré le Dr Lefèvre. Ils ont parlé."),
            [
                "M. Dupont et Mme Martin ont rencontré le Dr Lefèvre. ",
                "Ils ont parlé."
            ]
        );
        assert_eq!(
            split("MM. Durand et Petit sont arrivés avec Mlle Roux et Me Blanc. Puis Mgr. Aubert."),
            [
                "MM. Durand et Petit sont arrivés avec Mlle Roux et Me Blanc. ",
                "Puis Mgr. Aubert."
            ]
        );
        assert_eq!(
            split("Voir le chap. IV, cf. Annexe B, p. 12 et pp. 30-34. Ensuite on verra."),
            [
                "Voir le chap. IV, cf. Annexe B, p. 12 et pp. 30-34. ",
                "Ensuite on verra."
            ]
        );
        assert_eq!(
            split("Il habite av. Foch, env. 300 m plus loin, ex. Rue de la Paix. C'est loin."),
            [
                "Il habite av. Foch, env. 300 m plus loin, ex. Rue de la Paix. ",
                "C'est loin."
            ]
        );
        assert_eq!(
            split("La rue St. Jean. Elle longe la Ste. Chapelle."),
            ["La rue St. Jean. ", "Elle longe la Ste. Chapelle."]
        );
    }

    #[test]
    fn dates_and_words_that_are_also_abbreviations() {
        assert_eq!(
            split("La loi du 12 sept. 2024 modifie l'art. 3 du code. Ils étaient sept. Deux sont partis."),
            [
                "La loi du 12 sept. 2024 modifie l'art. 3 du code. ",
                "Ils étaient sept. ",
                "Deux sont partis.",
            ]
        );
        assert_eq!(
            split(
                "Le sommet du 3 janv. 2025 et celui du 14 févr. 2025 ont échoué. Le vol. 2 paraît."
            ),
            [
                "Le sommet du 3 janv. 2025 et celui du 14 févr. 2025 ont échoué. ",
                "Le vol. 2 paraît."
            ]
        );
    }

    #[test]
    fn etc_ends_a_sentence_only_before_a_capital() {
        assert_eq!(
            split("Des pommes, des poires, etc. et des prunes. Puis des fruits, etc. Le marché ferme."),
            [
                "Des pommes, des poires, etc. et des prunes. ",
                "Puis des fruits, etc. ",
                "Le marché ferme.",
            ]
        );
        assert_eq!(
            split("Des pommes, etc. 2025 sera meilleure."),
            ["Des pommes, etc. 2025 sera meilleure."]
        );
    }

    #[test]
    fn initials() {
        assert_eq!(
            split("J.-P. Sartre a croisé G. W. Bush à Paris. Ce fut bref."),
            ["J.-P. Sartre a croisé G. W. Bush à Paris. ", "Ce fut bref."]
        );
        assert_eq!(
            split("En 52 av. J.-C. César battit Vercingétorix. Rome triompha."),
            [
                "En 52 av. J.-C. ",
                "César battit Vercingétorix. ",
                "Rome triompha."
            ]
        );
        assert_eq!(
            split("C'est-à-dire, c.-à-d. Pierre. Il vient p.ex. Mardi."),
            ["C'est-à-dire, c.-à-d. Pierre. ", "Il vient p.ex. Mardi."]
        );
    }

    #[test]
    fn single_letter_words_can_end_sentences() {
        assert_eq!(
            split("Des solutions, il y en a. Mais elles coûtent cher."),
            ["Des solutions, il y en a. ", "Mais elles coûtent cher."]
        );
    }

    #[test]
    fn numbers_and_times() {
        assert_eq!(
            split("Le taux passe de 3,5 % à 3.5 points, soit 1.000.000 d'euros. Rendez-vous à 12 h 30. 45 personnes sont venues."),
            [
                "Le taux passe de 3,5 % à 3.5 points, soit 1.000.000 d'euros. ",
                "Rendez-vous à 12 h 30. ",
                "45 personnes sont venues.",
            ]
        );
    }

    #[test]
    fn ellipses() {
        assert_eq!(
            split("Il hésita... puis il partit. Elle attendit… Rien ne vint… Enfin !"),
            [
                "Il hésita... puis il partit. ",
                "Elle attendit… ",
                "Rien ne vint… ",
                "Enfin !"
            ]
        );
        assert_eq!(
            split("Il a déclaré que […] Les électeurs trancheront. Ensuite (...) Rien."),
            [
                "Il a déclaré que […] Les électeurs trancheront. ",
                "Ensuite (...) Rien."
            ]
        );
    }

    #[test]
    fn guillemets_with_french_spacing() {
        assert_eq!(
            split(
                "« Bonjour. » dit-il en entrant. « Vraiment ?! » s'écria-t-elle. Puis le silence."
            ),
            [
                "« Bonjour. » dit-il en entrant. ",
                "« Vraiment ?! » s'écria-t-elle. ",
                "Puis le silence.",
            ]
        );
        assert_eq!(
            split("Il a conclu : « C'est fini. » Le public s'est levé."),
            ["Il a conclu : « C'est fini. » ", "Le public s'est levé."]
        );
        // Non-breaking and narrow non-breaking spaces, as typeset French has them.
        assert_eq!(
            split("Il a dit\u{A0}: «\u{202F}Non\u{A0}!\u{202F}» Elle a ri."),
            [
                "Il a dit\u{A0}: «\u{202F}Non\u{A0}!\u{202F}» ",
                "Elle a ri."
            ]
        );
    }

    #[test]
    fn english_style_quotes() {
        assert_eq!(
            split("Il a répondu \"Jamais.\" Puis il a ajouté “Peut-être.” Elle a souri."),
            [
                "Il a répondu \"Jamais.\" ",
                "Puis il a ajouté “Peut-être.” ",
                "Elle a souri."
            ]
        );
        assert_eq!(
            split("La réponse fut nette. \"Non\", dit-il. “Pourquoi ?” demanda-t-elle."),
            [
                "La réponse fut nette. ",
                "\"Non\", dit-il. ",
                "“Pourquoi ?” demanda-t-elle."
            ]
        );
    }

    #[test]
    fn dialogue_dashes_and_brackets() {
        assert_eq!(
            split("Il se tourna vers elle. — Tu viens ? — Oui. (Elle hésitait.) Ils partirent."),
            [
                "Il se tourna vers elle. ",
                "— Tu viens ? ",
                "— Oui. (Elle hésitait.) ",
                "Ils partirent.",
            ]
        );
    }

    #[test]
    fn urls_and_emails_are_not_split() {
        assert_eq!(
            split(
                "Écrivez à jean.dupont@exemple.fr ou voyez https://www.exemple.fr/a.b?c=1. Merci."
            ),
            [
                "Écrivez à jean.dupont@exemple.fr ou voyez https://www.exemple.fr/a.b?c=1. ",
                "Merci."
            ]
        );
    }

    #[test]
    fn newlines_inside_a_paragraph() {
        assert_eq!(
            split("Une ligne coupée\nau milieu. Une autre\nphrase.\n"),
            ["Une ligne coupée\nau milieu. ", "Une autre\nphrase.\n"]
        );
    }

    #[test]
    fn lowercase_after_exclamation_continues() {
        assert_eq!(
            split("Hélas ! trois fois hélas ! La pluie revint."),
            ["Hélas ! trois fois hélas ! ", "La pluie revint."]
        );
    }

    #[test]
    fn long_runs_are_linear_and_covered() {
        let text = ". ".repeat(50_000) + &"a.".repeat(50_000) + &" ".repeat(10_000);
        let spans = sentences(&text);
        assert_eq!(spans.first().map(|s| s.start), Some(0));
        assert_eq!(spans.last().map(|s| s.end), Some(text.len()));
    }

    const FRENCH_PIECES: &[&str] = &[
        "M.", "Mme", " ", "\u{A0}", "\u{202F}", "\n", "«", "»", "\"", "“", "”", ".", "...", "…",
        "?!", "!", "?", "J.-C.", "etc.", "Le", "la", "é", "É", "3,5", "1.000", "a", "(", ")", "[",
        "]", "—", "-", "p.", "sept.", "12", "x",
    ];

    #[test]
    fn sentences_rebuild_any_input() {
        for_each_case(3000, |g| g.any_text(200), |t| check_sentences(t));
    }

    #[test]
    fn sentences_rebuild_french_like_input() {
        for_each_case(
            3000,
            |g| g.pieces(FRENCH_PIECES, 60),
            |t| check_sentences(t),
        );
    }

    #[test]
    fn paragraphs_are_ordered_trimmed_and_keep_all_text() {
        for_each_case(
            3000,
            |g| g.any_text(200),
            |text| {
                let spans = paragraphs(text);
                let mut last = 0;
                for s in &spans {
                    assert!(s.start >= last && s.start < s.end);
                    let p = &text[s.clone()];
                    assert_eq!(p, p.trim());
                    assert!(p.split('\n').all(|line| !line.trim().is_empty()));
                    last = s.end;
                }
                let kept: String = spans.iter().map(|s| &text[s.clone()]).collect();
                let strip = |t: &str| t.chars().filter(|c| !c.is_whitespace()).collect::<String>();
                assert_eq!(strip(&kept), strip(text));
            },
        );
    }

    fn check_sentences(text: &str) {
        let spans = sentences(text);
        let mut pos = 0;
        for s in &spans {
            assert_eq!(s.start, pos);
            assert!(s.end > s.start);
            pos = s.end;
        }
        assert_eq!(pos, text.len());
        let rebuilt: String = spans.iter().map(|s| &text[s.clone()]).collect();
        assert_eq!(rebuilt, text);
    }
}
