//! The numbers check: every number written in digits in the French is in the English, and the
//! English writes no number in digits that the French does not have (in digits or in words).
//!
//! Numbers are compared by value, not by spelling, so formatting may differ:
//! - French and English separators: `3,5` = `3.5`; `3 000`, `3 000` (no-break or narrow
//!   no-break space), `3.000` = `3,000` = `3000`. A lone `,` or `.` followed by exactly three
//!   digits is ambiguous (`1,500` is 1.5 in French, 1500 in English) and matches either value;
//! - scale words: `2,5 milliards` = `2.5 billion` = `2,500,000,000`; `3 millions` = `3 million`;
//! - ordinals: `1er`, `2e`, `3ème` = `1st`, `2nd`, `3rd` (the suffix is ignored);
//! - percentages: `25 %` = `25%` = `25 per cent` (the sign is ignored);
//! - times: `14h30`, `14 h 30` = `14:30` = `2:30 pm`; `14h` = `2 pm` (the hour matches itself or
//!   itself ± 12, minutes `00` are not numbers);
//! - decades: `années 60` = `the sixties` = `the 1960s` = `the '60s`;
//! - rounds of a cup: `8es de finale` = `the last 16` = `the round of 16`;
//! - digits glued after a letter belong to a code or a name ("CO2", "G20", "A380") and are left
//!   to the names check.
//!
//! Spelled-out numbers, the policy: a number the French writes in digits may be written in words
//! in the English ("2" → "two", "1er" → "first", "60" → "sixties") for the English number words
//! from zero to twenty, the tens, "hundred", "thousand", "dozen" and the ordinals to twentieth;
//! and a number the English writes in digits passes when the French has it in words ("deux" →
//! "2", "vingt-cinq" → "25"). Numbers spelled out on both sides are not checked at all: words
//! like "one" or "second" are too often not numbers.
//!
//! Not for: checking units, currencies or signs ("-5" = "5"), or dates reordered across fields;
//! a year the English adds for clarity ("last year" → "in 2010") is reported as added.

use super::{fold, missing_and_added, words, CheckKind, Finding};

/// A number found in a text: its possible values (one, or several when its writing is
/// ambiguous or a scale word follows) and how it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub values: Vec<f64>,
    pub text: String,
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn contains(set: &[f64], v: f64) -> bool {
    set.iter().any(|&x| same(x, v))
}

fn is_group_space(c: char) -> bool {
    matches!(c, ' ' | '\u{A0}' | '\u{202F}' | '\u{2009}')
}

/// Scale words that may follow a number, with their factor.
const SCALES: &[(&str, f64)] = &[
    ("mille", 1e3),
    ("thousand", 1e3),
    ("million", 1e6),
    ("millions", 1e6),
    ("m", 1e6),
    ("mn", 1e6),
    ("milliard", 1e9),
    ("milliards", 1e9),
    ("md", 1e9),
    ("mds", 1e9),
    ("billion", 1e9),
    ("billions", 1e9),
    ("bn", 1e9),
];

/// The numbers written with digits in `text`.
pub fn numbers(text: &str) -> Vec<Number> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let byte = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let digits_from = |i: usize| {
        let mut j = i;
        while at(j).is_some_and(|c| c.is_ascii_digit()) {
            j += 1;
        }
        j
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if !c.is_ascii_digit() || (i > 0 && at(i - 1).is_some_and(|p| p.is_ascii_digit())) {
            i += 1;
            continue;
        }
        let start = i;
        let g0_end = digits_from(i);
        // Codes and names: "CO2", "G20", "A380", "M6" (the names check has them).
        if i > 0 && at(i - 1).is_some_and(char::is_alphabetic) {
            i = g0_end;
            continue;
        }
        let g0 = &text[byte(i)..byte(g0_end)];
        // Times: 14h30, 14 h 30, 14h, 14:30, 2:30 pm, 2 pm.
        if let Some((n, end)) = time_at(text, &chars, start, g0_end) {
            out.extend(n);
            i = end;
            continue;
        }
        // Groups after separators.
        let mut groups: Vec<(char, &str)> = Vec::new();
        let mut j = g0_end;
        while let Some(sep) = at(j) {
            let is_sep = matches!(sep, ',' | '.') || is_group_space(sep);
            if !is_sep || !at(j + 1).is_some_and(|c| c.is_ascii_digit()) {
                break;
            }
            let k = digits_from(j + 1);
            let g = &text[byte(j + 1)..byte(k)];
            if is_group_space(sep)
                && (g.len() != 3
                    || g0.len() > 3
                    || groups
                        .iter()
                        .any(|&(s, g)| !is_group_space(s) || g.len() != 3))
            {
                break;
            }
            groups.push((sep, g));
            j = k;
        }
        let end = j;
        let mut values = interpretations(g0, &groups);
        if values.is_empty() {
            // "1.2.3", "15.11.2011": each group on its own.
            out.push(Number {
                values: vec![g0.parse().unwrap_or(0.0)],
                text: g0.to_string(),
            });
            for (_, g) in &groups {
                out.push(Number {
                    values: vec![g.parse().unwrap_or(0.0)],
                    text: g.to_string(),
                });
            }
            i = end;
            continue;
        }
        // "2020/21", "2010-11": the second year written with two digits.
        if groups.is_empty() && g0.len() == 2 {
            let before = &text[..byte(start)];
            let mut b = before.chars().rev();
            if matches!(b.next(), Some('/' | '-' | '–')) {
                let year: String = b.take(4).collect::<String>().chars().rev().collect();
                if year.len() == 4 && year.chars().all(|c| c.is_ascii_digit()) {
                    if let Ok(v) = format!("{}{g0}", &year[..2]).parse::<f64>() {
                        values.push(v);
                    }
                }
            }
        }
        // Decades: 1960s, '60s.
        let after = &text[byte(end)..];
        if groups.is_empty()
            && after.starts_with('s')
            && !after[1..].starts_with(char::is_alphanumeric)
        {
            if let Ok(v) = g0.parse::<u32>() {
                if g0.len() == 4 && v % 10 == 0 {
                    values.push(f64::from(v % 100));
                } else if g0.len() == 2 && v % 10 == 0 {
                    values.push(f64::from(1900 + v));
                }
            }
        }
        // Scale words: "2,5 milliards", "3 million", "5bn".
        let rest = after.trim_start_matches(is_group_space);
        let word: String = rest
            .chars()
            .take_while(|c| c.is_alphabetic())
            .collect::<String>()
            .to_lowercase();
        if let Some(&(_, f)) = SCALES.iter().find(|(w, _)| *w == word) {
            let scaled: Vec<f64> = values.iter().map(|v| v * f).collect();
            values.extend(scaled);
        }
        // Rounds of a cup: "8es de finale" are the last 16, "16es de finale" the last 32.
        if groups.is_empty() && is_round_of_cup(after) {
            let doubled: Vec<f64> = values.iter().map(|v| v * 2.0).collect();
            values.extend(doubled);
        }
        out.push(Number {
            values,
            text: text[byte(start)..byte(end)].to_string(),
        });
        i = end;
    }
    out
}

/// Whether `after` (the text after a number) makes it a French round of a cup: an ordinal
/// suffix, then "de finale" ("8es de finale", "16e de finale").
fn is_round_of_cup(after: &str) -> bool {
    let rest = ["èmes", "ème", "es", "e"]
        .iter()
        .find_map(|s| after.strip_prefix(s));
    rest.is_some_and(|r| {
        let words: Vec<&str> = r.split_whitespace().take(2).collect();
        words == ["de", "finale"] || words == ["de", "finales"]
    })
}

/// The values `g0` followed by separated `groups` may stand for: all separators grouping
/// thousands, or the last one a decimal mark. Empty when neither reading fits.
fn interpretations(g0: &str, groups: &[(char, &str)]) -> Vec<f64> {
    let parse = |s: &str| s.parse::<f64>().ok();
    let Some(((last_sep, last), init)) = groups.split_last() else {
        return parse(g0).into_iter().collect();
    };
    let mut out = Vec::new();
    let grouping = |gs: &[(char, &str)]| {
        g0.len() <= 3
            && gs.iter().all(|&(_, g)| g.len() == 3)
            && gs
                .iter()
                .filter(|&&(s, _)| !is_group_space(s))
                .map(|&(s, _)| s)
                .collect::<std::collections::HashSet<_>>()
                .len()
                <= 1
    };
    let joined = |gs: &[(char, &str)]| {
        let mut s = g0.to_string();
        for (_, g) in gs {
            s.push_str(g);
        }
        s
    };
    if grouping(groups) {
        out.extend(parse(&joined(groups)));
    }
    if matches!(last_sep, ',' | '.')
        && (init.is_empty() || grouping(init))
        && !init.iter().any(|&(s, _)| s == *last_sep)
    {
        if let Some(v) = parse(&format!("{}.{}", joined(init), last)) {
            if !contains(&out, v) {
                out.push(v);
            }
        }
    }
    out
}

/// A time starting at char `start` whose hour digits end at `h_end`: its numbers and the char
/// index after it.
fn time_at(
    text: &str,
    chars: &[(usize, char)],
    start: usize,
    h_end: usize,
) -> Option<(Vec<Number>, usize)> {
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let byte = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    if h_end - start > 2 {
        return None;
    }
    let hour: u32 = text[byte(start)..byte(h_end)].parse().ok()?;
    if hour > 24 {
        return None;
    }
    let skip_spaces = |mut i: usize| {
        while at(i).is_some_and(is_group_space) {
            i += 1;
        }
        i
    };
    let two_digits = |i: usize| {
        at(i).is_some_and(|c| c.is_ascii_digit())
            && at(i + 1).is_some_and(|c| c.is_ascii_digit())
            && !at(i + 2).is_some_and(|c| c.is_ascii_digit())
    };
    let mut minutes: Option<u32> = None;
    let mut end;
    let mut is_time = false;
    let i = skip_spaces(h_end);
    if at(i) == Some('h') && !at(i + 1).is_some_and(char::is_alphabetic) {
        // French: 14h, 14h30, 14 h 30.
        is_time = true;
        end = i + 1;
        let m = skip_spaces(end);
        if two_digits(m) {
            minutes = text[byte(m)..byte(m + 2)].parse().ok();
            end = m + 2;
        }
    } else if at(h_end) == Some(':') && two_digits(h_end + 1) {
        is_time = true;
        minutes = text[byte(h_end + 1)..byte(h_end + 3)].parse().ok();
        end = h_end + 3;
    } else {
        end = h_end;
    }
    let after = skip_spaces(end);
    let tail = fold(&text[byte(after)..]);
    for marker in ["am", "pm", "a.m.", "p.m.", "o'clock"] {
        if tail.starts_with(marker)
            && !tail[marker.len()..].starts_with(|c: char| c.is_alphanumeric())
        {
            is_time = true;
            end = after + marker.chars().count();
            break;
        }
    }
    if !is_time || minutes.is_some_and(|m| m > 59) {
        return None;
    }
    let h = f64::from(hour);
    // "20.45", as English sometimes writes 20h45, stands for both parts.
    let dotted = minutes.map(|m| h + f64::from(m) / 100.0);
    let mut hours = vec![h];
    hours.extend(dotted);
    if hour <= 12 {
        hours.push(h + 12.0);
    }
    if hour >= 12 {
        hours.push(h - 12.0);
    }
    let mut out = vec![Number {
        values: hours,
        text: text[byte(start)..byte(end)].to_string(),
    }];
    if let Some(m) = minutes.filter(|&m| m != 0) {
        out.push(Number {
            values: [f64::from(m)].into_iter().chain(dotted).collect(),
            text: text[byte(start)..byte(end)].to_string(),
        });
    }
    Some((out, end))
}

/// English number words and the value they stand for.
fn english_word(w: &str) -> Option<f64> {
    const UNITS: &[&str] = &[
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    const ORDINALS: &[&str] = &[
        "zeroth",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
        "twentieth",
    ];
    const TENS: &[(&str, f64)] = &[
        ("twenty", 20.0),
        ("thirty", 30.0),
        ("forty", 40.0),
        ("fifty", 50.0),
        ("sixty", 60.0),
        ("seventy", 70.0),
        ("eighty", 80.0),
        ("ninety", 90.0),
        ("twenties", 20.0),
        ("thirties", 30.0),
        ("forties", 40.0),
        ("fifties", 50.0),
        ("sixties", 60.0),
        ("seventies", 70.0),
        ("eighties", 80.0),
        ("nineties", 90.0),
        ("hundred", 100.0),
        ("thousand", 1000.0),
        ("dozen", 12.0),
        ("million", 1e6),
        ("billion", 1e9),
    ];
    if let Some(i) = UNITS.iter().position(|u| *u == w) {
        return Some(i as f64);
    }
    if let Some(i) = ORDINALS.iter().position(|u| *u == w) {
        return Some(i as f64);
    }
    if let Some(&(_, v)) = TENS.iter().find(|(t, _)| *t == w) {
        return Some(v);
    }
    // twenty-five, thirty-first
    let (t, u) = w.split_once('-')?;
    Some(english_word(t)? + english_word(u)?)
}

/// French number words and the value they stand for.
fn french_word(w: &str) -> Option<f64> {
    const WORDS: &[(&str, f64)] = &[
        ("zero", 0.0),
        ("un", 1.0),
        ("une", 1.0),
        ("premier", 1.0),
        ("premiere", 1.0),
        ("deux", 2.0),
        ("trois", 3.0),
        ("quatre", 4.0),
        ("cinq", 5.0),
        ("six", 6.0),
        ("sept", 7.0),
        ("huit", 8.0),
        ("neuf", 9.0),
        ("dix", 10.0),
        ("onze", 11.0),
        ("douze", 12.0),
        ("treize", 13.0),
        ("quatorze", 14.0),
        ("quinze", 15.0),
        ("seize", 16.0),
        ("vingt", 20.0),
        ("vingts", 20.0),
        ("trente", 30.0),
        ("quarante", 40.0),
        ("cinquante", 50.0),
        ("soixante", 60.0),
        ("cent", 100.0),
        ("cents", 100.0),
        ("mille", 1000.0),
        ("million", 1e6),
        ("millions", 1e6),
        ("milliard", 1e9),
        ("milliards", 1e9),
        ("dizaine", 10.0),
        ("dizaines", 10.0),
        ("douzaine", 12.0),
        ("quinzaine", 15.0),
        ("vingtaine", 20.0),
        ("trentaine", 30.0),
        ("quarantaine", 40.0),
        ("cinquantaine", 50.0),
        ("centaine", 100.0),
        ("centaines", 100.0),
        ("millier", 1000.0),
        ("milliers", 1000.0),
        ("moitie", 50.0),
        ("quart", 25.0),
        ("decennie", 10.0),
        ("decennies", 10.0),
        ("siecle", 100.0),
    ];
    if let Some(&(_, v)) = WORDS.iter().find(|(t, _)| *t == w) {
        return Some(v);
    }
    if let Some(stem) = w.strip_suffix("ieme") {
        // deuxième, troisième, cinquième, neuvième
        let base = match stem {
            "cinqu" => "cinq",
            "neuv" => "neuf",
            s => s,
        };
        return french_word(base).or_else(|| french_word(&format!("{base}e")));
    }
    // vingt-cinq, dix-sept, soixante-dix, quatre-vingt(s)-dix
    let parts: Vec<&str> = w.split('-').filter(|p| *p != "et").collect();
    if parts.len() < 2 {
        return None;
    }
    let mut total = 0.0;
    let mut prev: Option<f64> = None;
    for p in parts {
        let v = french_word(p)?;
        match prev {
            Some(4.0) if v == 20.0 => {
                total += 80.0 - 4.0;
            }
            _ => total += v,
        }
        prev = Some(v);
    }
    Some(total)
}

fn values_of(nums: &[Number]) -> Vec<f64> {
    nums.iter().flat_map(|n| n.values.iter().copied()).collect()
}

/// A Roman numeral in capitals, optionally with a French ordinal suffix: "XXe" → 20, "IV" → 4.
fn roman(w: &str) -> Option<f64> {
    let digits = w
        .strip_suffix("ème")
        .or_else(|| w.strip_suffix("er"))
        .or_else(|| w.strip_suffix('e'))
        .unwrap_or(w);
    if digits.is_empty() {
        return None;
    }
    let value = |c| match c {
        'I' => Some(1),
        'V' => Some(5),
        'X' => Some(10),
        'L' => Some(50),
        'C' => Some(100),
        _ => None,
    };
    let vs: Vec<i32> = digits.chars().map(value).collect::<Option<_>>()?;
    let mut total = 0;
    for (i, &v) in vs.iter().enumerate() {
        if vs.get(i + 1).is_some_and(|&n| n > v) {
            total -= v;
        } else {
            total += v;
        }
    }
    Some(f64::from(total))
}

/// Values of the number words of `text` (by `of`), and of its Roman numerals if `romans`.
fn word_values(text: &str, of: fn(&str) -> Option<f64>, romans: bool) -> Vec<f64> {
    let mut out = Vec::new();
    let mut previous: Option<f64> = None;
    for (_, w) in words(text) {
        if romans {
            out.extend(roman(w));
        }
        let w = fold(w);
        // "d'un", "l'une": the word after the elision.
        let w = w.rsplit('\'').next().unwrap_or(&w);
        let value = of(w);
        if let Some(v) = value {
            out.push(v);
            // "trois décennies" 30, "deux cents" 200, "three hundred" 300.
            if let Some(p) = previous {
                out.push(p * v);
            }
        }
        previous = value;
    }
    out
}

pub fn check(source: &str, output: &str) -> Vec<Finding> {
    let src = numbers(source);
    let out = numbers(output);
    if src.is_empty() && out.is_empty() {
        return Vec::new();
    }
    let mut out_values = values_of(&out);
    out_values.extend(word_values(output, english_word, false));
    let mut src_values = values_of(&src);
    src_values.extend(word_values(source, french_word, true));

    let mut missing: Vec<&str> = Vec::new();
    for n in &src {
        if !n.values.iter().any(|&v| contains(&out_values, v)) && !missing.contains(&&*n.text) {
            missing.push(&n.text);
        }
    }
    let mut added: Vec<&str> = Vec::new();
    for n in &out {
        if !n.values.iter().any(|&v| contains(&src_values, v)) && !added.contains(&&*n.text) {
            added.push(&n.text);
        }
    }
    missing_and_added(CheckKind::Numbers, &missing, &added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(t: &str) -> Vec<Vec<f64>> {
        numbers(t).into_iter().map(|n| n.values).collect()
    }

    #[test]
    fn french_and_english_formats_parse_to_the_same_values() {
        assert_eq!(vals("3,5 %"), [[3.5]]);
        assert_eq!(vals("3.5%"), [[3.5]]);
        assert_eq!(vals("3 000 euros"), [[3000.0]]);
        assert_eq!(vals("3\u{202F}000\u{A0}000"), [[3_000_000.0]]);
        assert_eq!(vals("3,000,000"), [[3_000_000.0]]);
        assert_eq!(vals("1,500"), [[1500.0, 1.5]]);
        assert_eq!(vals("en 1995 300 personnes"), [[1995.0], [300.0]]);
        assert_eq!(vals("1, 2, 3"), [[1.0], [2.0], [3.0]]);
        assert_eq!(vals("le 15.11.2011"), [[15.0], [11.0], [2011.0]]);
        assert_eq!(vals("2,5 milliards"), [[2.5, 2.5e9]]);
        assert_eq!(vals("the 1960s"), [[1960.0, 60.0]]);
        assert_eq!(vals("les 8es de finale"), [[8.0, 16.0]]);
        assert_eq!(vals("le 8e arrondissement"), [[8.0]]);
        assert!(check(
            "qualifiés pour les 8es de finale",
            "qualified for the last 16"
        )
        .is_empty());
    }

    #[test]
    fn times_match_across_clocks_and_styles() {
        for (fr, en) in [
            ("à 14h30", "at 2:30 pm"),
            ("à 14 h 30", "at 14:30"),
            ("à 20h45", "at 20.45"),
            ("à 9h00", "at 9 a.m."),
            ("à 21h", "at 9 pm"),
        ] {
            assert_eq!(check(fr, en), vec![], "{fr} | {en}");
        }
        assert_eq!(check("à 14h30", "at 3:30 pm").len(), 2);
    }

    #[test]
    fn formatting_differences_pass() {
        let ok = [
            (
                "Il a payé 3 000 euros, soit 3,5 % de plus.",
                "He paid 3,000 euros, 3.5% more.",
            ),
            ("Une hausse de 25 % en 2011.", "A 25 per cent rise in 2011."),
            ("Le 1er janvier, à 14h30.", "On January 1st, at 2:30 pm."),
            (
                "Le 1er janvier, à 14h30.",
                "On the first of January, at 14:30.",
            ),
            (
                "Les deux hommes, 2 500 personnes",
                "The 2 men, 2,500 people",
            ),
            (
                "Il a 2 enfants et 3 chiens.",
                "He has two children and three dogs.",
            ),
            ("dans les années 60", "in the 1960s"),
            ("2,5 milliards de dollars", "$2.5bn"),
            ("2,5 milliards de dollars", "$2,500,000,000"),
            ("Vingt-cinq ans plus tard", "25 years later"),
            ("Le XXe siècle", "The 20th century"),
            ("à l'horizon 2020/21", "by 2020/2021"),
            ("en 2010-2011", "in 2010-11"),
        ];
        for (fr, en) in ok {
            assert_eq!(check(fr, en), vec![], "{fr} | {en}");
        }
    }

    #[test]
    fn changed_missing_and_added_numbers_are_flagged() {
        let f = check(
            "Il a payé 3 000 euros en 2011.",
            "He paid 3,500 euros in 2011.",
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].detail.contains("3 000"));
        assert!(f[1].detail.contains("3,500"));
        let f = check(
            "En 1989 ou 1991, il a quitté le centre.",
            "In 1989, he left the centre.",
        );
        assert_eq!(f.len(), 1);
        assert!(f[0].detail.contains("1991"));
        let f = check("Il est parti.", "He left in 2012.");
        assert_eq!(f.len(), 1);
    }
}
