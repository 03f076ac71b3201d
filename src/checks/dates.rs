//! The dates check: the days of the week and the months the French names are the ones the
//! English names. A small model turns "mardi" into "Monday" or "juin" into "July" as readily as
//! it changes a number, and nothing else sees it: the sentence is fluent, English, and as long
//! as it should be.
//!
//! A day or month of the French is missing when the English has neither its English name nor
//! its number ("juin" may be "June" or "6"); one is added when the English names a day or a
//! month the French does not have. "mai" and "mars" are the only French names that are also
//! other words ("Mars" the planet, "mai" in no English sense), and "May" and "March" are also
//! English words ("may", "march"), so these are only counted capitalised in the English.
//!
//! Not for: dates in digits (`12/06/2015`: the numbers check), relative dates ("hier" →
//! "yesterday"), or whether a date is right.

use super::{fold, missing_and_added, words, CheckKind, Finding};

/// (folded French name, English name, month number or 0 for a day).
const NAMES: &[(&str, &str, u32)] = &[
    ("lundi", "Monday", 0),
    ("mardi", "Tuesday", 0),
    ("mercredi", "Wednesday", 0),
    ("jeudi", "Thursday", 0),
    ("vendredi", "Friday", 0),
    ("samedi", "Saturday", 0),
    ("dimanche", "Sunday", 0),
    ("janvier", "January", 1),
    ("fevrier", "February", 2),
    ("mars", "March", 3),
    ("avril", "April", 4),
    ("mai", "May", 5),
    ("juin", "June", 6),
    ("juillet", "July", 7),
    ("aout", "August", 8),
    ("septembre", "September", 9),
    ("octobre", "October", 10),
    ("novembre", "November", 11),
    ("decembre", "December", 12),
];

/// English names that are also ordinary words ("may", "march"): counted only as written with a
/// capital.
const AMBIGUOUS_EN: &[&str] = &["May", "March"];

/// The days and months named in the French `source` (indices into [`NAMES`]), in order, once
/// each, elided or not ("d'octobre"); and apart, the days the English may name or not. Not counted: "Mars" capitalised mid-sentence (the planet,
/// a brand), and a day followed by the date's number ("mardi 15 novembre"), which a translator
/// may leave out ("on 15 November") since the date says it.
fn in_french(source: &str) -> (Vec<usize>, Vec<usize>) {
    let (mut out, mut dated_days) = (Vec::new(), Vec::new());
    let all = words(source);
    for (k, &(_, w)) in all.iter().enumerate() {
        let f = fold(w);
        let f = match f.split_once(['\'', '’']) {
            Some((head, tail)) if ["d", "l", "qu", "jusqu"].contains(&head) => tail.to_string(),
            _ => f,
        };
        if let Some(i) = NAMES.iter().position(|(fr, _, _)| *fr == f) {
            if f == "mars" && w.starts_with('M') && !source.trim_start().starts_with(w) {
                continue;
            }
            let dated = all
                .get(k + 1)
                .is_some_and(|(_, n)| n.chars().all(|c| c.is_ascii_digit()));
            if NAMES[i].2 == 0 && dated {
                dated_days.push(i);
                continue;
            }
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    (out, dated_days)
}

/// The days and months named in the English `output` (indices into [`NAMES`]).
fn in_english(output: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for (_, w) in words(output) {
        let w = w.trim_end_matches("'s").trim_end_matches("’s");
        let found = NAMES.iter().position(|(_, en, _)| {
            if AMBIGUOUS_EN.contains(en) {
                *en == w
            } else {
                en.eq_ignore_ascii_case(w)
            }
        });
        if let Some(i) = found {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

pub fn check(source: &str, output: &str) -> Vec<Finding> {
    let (src, optional) = in_french(source);
    let out = in_english(output);
    if src.is_empty() && out.is_empty() {
        return Vec::new();
    }
    let digits: Vec<u32> = words(output)
        .into_iter()
        .filter_map(|(_, w)| w.parse::<u32>().ok())
        .collect();
    let missing: Vec<String> = src
        .iter()
        .filter(|i| !out.contains(i))
        .filter(|&&i| NAMES[i].2 == 0 || !digits.contains(&NAMES[i].2))
        .map(|&i| format!("{} ({})", NAMES[i].1, NAMES[i].0))
        .collect();
    let added: Vec<&str> = out
        .iter()
        .filter(|i| !src.contains(i) && !optional.contains(i))
        .map(|&i| NAMES[i].1)
        .collect();
    missing_and_added(CheckKind::Dates, &missing, &added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_day_is_found_both_ways() {
        let fr = "La réunion a-t-elle eu lieu mardi à Lyon ?";
        let f = check(fr, "Did the meeting take place on Monday in Lyon?");
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].detail.contains("Tuesday (mardi)"), "{f:?}");
        assert!(f[1].detail.contains("Monday"), "{f:?}");
        assert!(check(fr, "Did the meeting take place on Tuesday in Lyon?").is_empty());
    }

    #[test]
    fn months_may_be_numbers_and_ambiguous_words_are_not_months() {
        let fr = "Les travaux commenceront le 3 juin et finiront en août.";
        assert!(check(fr, "Work will begin on 3 June and end in August.").is_empty());
        assert!(check(fr, "Work will begin on 3/6 and end in August.").is_empty());
        assert_eq!(
            check(fr, "Work will begin on 3 July and end in August.").len(),
            2
        );
        // "may" and "march" as verbs are not months; "mai" in French is.
        assert!(check("Il pourrait venir.", "He may come, and march on.").is_empty());
        assert_eq!(
            check("Il viendra en mai.", "He will come in June.").len(),
            2
        );
        assert!(check("Il viendra en mai.", "He will come in May.").is_empty());
    }

    #[test]
    fn elided_months_count_and_a_dated_day_may_go() {
        assert!(check(
            "Depuis le mois d'octobre, il circule.",
            "Since October, it circulates."
        )
        .is_empty());
        let fr = "Il sera mardi 15 novembre à Bordeaux.";
        assert!(check(fr, "On 15 November, he will be in Bordeaux.").is_empty());
        assert!(check(fr, "On Tuesday 15 November, he will be in Bordeaux.").is_empty());
        assert_eq!(check(fr, "On 15 October, he will be in Bordeaux.").len(), 2);
    }

    #[test]
    fn a_text_without_dates_is_not_checked() {
        assert!(check("Le conseil a voté.", "The council voted.").is_empty());
    }
}
