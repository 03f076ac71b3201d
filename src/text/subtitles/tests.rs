use super::*;
use crate::text::inline::shout;
use crate::text::testgen::{for_each_case, Gen};

const SRT_SAMPLE: &str = include_str!("../../../tests/fixtures/docs/sample.fr.srt");
const VTT_SAMPLE: &str = include_str!("../../../tests/fixtures/docs/sample.fr.vtt");
const BAD_SRT: &str = include_str!("../../../tests/fixtures/docs/bad-timestamps.fr.srt");

const S: Subtitles = Subtitles(Dialect::Srt);
const V: Subtitles = Subtitles(Dialect::Vtt);

fn rebuild(codec: &Subtitles, text: &str, f: impl Fn(&str) -> String) -> String {
    let english: Vec<String> = codec.pieces(text).unwrap().iter().map(|p| f(p)).collect();
    codec.rebuild(text, &english).unwrap()
}

/// The lines that are not cue text: numbers, timings, identifiers, blank lines, header, notes.
fn frame(text: &str, codec: &Subtitles) -> Vec<String> {
    let cues = cues(text, codec.0).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    for c in &cues {
        out.push(text[at..c.text.start].to_string());
        at = c.text.end;
    }
    out.push(text[at..].to_string());
    out
}

fn line_counts(text: &str, codec: &Subtitles) -> Vec<usize> {
    cues(text, codec.0)
        .unwrap()
        .iter()
        .map(|c| text[c.text.clone()].lines().count())
        .collect()
}

#[test]
fn pieces_of_the_srt_sample() {
    assert_eq!(
        S.pieces(SRT_SAMPLE).unwrap(),
        [
            "Bonjour à tous, et bienvenue dans notre petite association.",
            "<a>Aujourd'hui, nous allons parler</a> de ce que nous avons fait cette année.",
            "- Vous êtes prêts ?\n- Oui, allons-y !",
            "<a>Merci</a> d'être venus si <b>nombreux</b>.",
            "Le premier trimestre a été difficile, mais nous avons tenu bon, grâce à nos bénévoles.",
            "Merci.",
        ]
    );
}

#[test]
fn pieces_of_the_vtt_sample() {
    assert_eq!(
        V.pieces(VTT_SAMPLE).unwrap(),
        [
            "Bonjour à tous, et bienvenue dans notre petite association.",
            "<a>Aujourd'hui, nous allons</a> <b>parler</b> de ce que nous avons fait cette année.",
            "<a>Les dons</a> ont augmenté de 12 % & plus.",
            "Merci à tous.",
        ]
    );
}

#[test]
fn identity_rebuilds_byte_for_byte() {
    assert_eq!(rebuild(&S, SRT_SAMPLE, str::to_string), SRT_SAMPLE);
    assert_eq!(rebuild(&V, VTT_SAMPLE, str::to_string), VTT_SAMPLE);
    let crlf_less = "1\n00:00:01,000 --> 00:00:02,000\nSans fin de ligne";
    assert_eq!(rebuild(&S, crlf_less, str::to_string), crlf_less);
}

#[test]
fn a_translation_keeps_timings_numbers_and_line_counts() {
    for (codec, text) in [(&S, SRT_SAMPLE), (&V, VTT_SAMPLE)] {
        let out = rebuild(codec, text, shout);
        assert_ne!(out, text);
        assert_eq!(frame(&out, codec), frame(text, codec));
        assert_eq!(line_counts(&out, codec), line_counts(text, codec));
    }
    // A translation of another length: lines balanced at spaces.
    let english = [
        "Hello everyone and welcome to our small charity.",
        "<a>Today we will talk</a> about what we did this year.",
        "- Are you ready?\n- Yes, let's go!",
        "<a>Thank you</a> for coming in such <b>numbers</b>.",
        "The first quarter was hard, but we held on, thanks to our volunteers.",
        "Thanks.",
    ]
    .map(String::from);
    let out = S.rebuild(SRT_SAMPLE, &english).unwrap();
    assert_eq!(frame(&out, &S), frame(SRT_SAMPLE, &S));
    assert!(out.contains(
        "00:00:01,000 --> 00:00:03,500\nHello everyone and welcome\nto our small charity.\n"
    ));
    assert!(out.contains("<i>Today we will talk</i> about\nwhat we did this year."));
    assert!(out.contains("- Are you ready?\n- Yes, let's go!"));
    assert!(out.contains(
        "{\\an8}<font color=\"#ffff00\">Thank you</font> for coming in such <b>numbers</b>."
    ));
    assert!(
        out.contains(
            "Y2:100\nThe first quarter was\nhard, but we held on,\nthanks to our volunteers.\n"
        ),
        "{out}"
    );
    assert!(out.ends_with("00:00:14,000\nThanks.\n"));
}

#[test]
fn vtt_tags_and_escapes() {
    let out = rebuild(&V, VTT_SAMPLE, shout);
    assert!(out.contains("<v Marie>AUJOURD'HUI, NOUS ALLONS <i>PARLER</i></v> DE\nCE QUE NOUS AVONS FAIT CETTE ANNÉE."), "{out}");
    assert!(out.contains("<c.jaune>LES DONS</c> ONT AUGMENTÉ DE 12 % &amp; PLUS."));
    // Karaoke timestamps do not survive a translation.
    assert!(out.contains("\nMERCI À TOUS.\n"));
    assert!(out.starts_with("WEBVTT - Rapport annuel\nKind: captions\nLanguage: fr\n\nNOTE Ce fichier sert aux tests.\nLes notes ne sont pas traduites.\n\nSTYLE\n"));
}

#[test]
fn the_models_own_lines_are_kept_when_it_kept_their_number() {
    let text = "1\n00:00:01,000 --> 00:00:02,000\nUne ligne assez longue\net une autre\n";
    let out = S
        .rebuild(text, &["A line quite long\nand another".into()])
        .unwrap();
    assert!(out.ends_with("\nA line quite long\nand another\n"));
    // One line stays one line.
    let text = "1\n00:00:01,000 --> 00:00:02,000\nUne seule ligne.\n";
    let out = S.rebuild(text, &["One\nsingle line.".into()]).unwrap();
    assert!(out.ends_with("\nOne single line.\n"));
    // Too few words for the lines: fewer lines, never an empty one (it would end the cue).
    let text = "1\n00:00:01,000 --> 00:00:02,000\nUn\ndeux\ntrois\n";
    let out = S.rebuild(text, &["Yes.".into()]).unwrap();
    assert!(out.ends_with("\nYes.\n"));
}

#[test]
fn balanced_breaks_cut_near_equal_lengths() {
    let t = "aaaa bb cccc dd eeee";
    assert_eq!(balanced_breaks(t, 2), [12]);
    assert_eq!(balanced_breaks(t, 1), Vec::<usize>::new());
    let b = balanced_breaks(t, 3);
    assert_eq!(b.len(), 2);
    assert!(b[0] < b[1]);
    assert_eq!(balanced_breaks("a b", 5), [1]);
    // Lengths count characters: the middle of 16 characters is after "éééééé a".
    assert_eq!(balanced_breaks("éééééé a bbbbbbb", 2), [14]);
}

#[test]
fn bad_timestamps_are_errors_naming_the_cue_and_line() {
    let err = S.pieces(BAD_SRT).unwrap_err().to_string();
    assert!(err.contains("cue 2 (line 6)"), "{err}");
    assert!(err.contains("seconds must be below 60"), "{err}");
    for (text, expected) in [
        (
            "1\n00:00:01,000 00:00:02,000\nx\n",
            "cue 1 (line 2): no \"-->\"",
        ),
        (
            "1\n00:00:03,000 --> 00:00:02,000\nx\n",
            "ends before it starts",
        ),
        (
            "1\n00:61:01,000 --> 00:62:02,000\nx\n",
            "minutes must be below 60",
        ),
        ("1\n00:00:01 --> 00:00:02,000\nx\n", "no milliseconds"),
        (
            "Bonjour\n",
            "cue 1 (line 1): expected a cue number or a timing line",
        ),
        ("1\n", "a cue number with no timing line"),
        (
            "1\n00:00:01,000 --> 00:00:02,000\nx\n\n\nSuite perdue\n",
            "cue 2 (line 6)",
        ),
        (
            "1\n0:0:1,000 --> 00:00:02,000\nx\n",
            "expected hours:minutes:seconds",
        ),
    ] {
        let err = S.pieces(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
    for (text, expected) in [
        ("Bonjour\n", "starts with WEBVTT"),
        ("WEBVTTX\n", "starts with WEBVTT"),
        (
            "WEBVTT\n\n00:01.000 --> 00:00.500\nx\n",
            "cue 1 (line 3): the cue ends before it starts",
        ),
        (
            "WEBVTT\n\nid\n00:01,000 --> 00:02,000\nx\n",
            "cue 1 (line 4): bad timestamp",
        ),
        ("WEBVTT\n\nid\nid2\n", "cue 1 (line 4): no \"-->\""),
    ] {
        let err = V.pieces(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
    // The whole file is refused, by rebuild and plain_text too.
    assert!(S.rebuild(BAD_SRT, &["x".into()]).is_err());
    assert!(S.plain_text(BAD_SRT).is_err());
}

#[test]
fn plain_text_is_the_cues_text() {
    let plain = S.plain_text(SRT_SAMPLE).unwrap();
    assert!(plain.starts_with(
        "Bonjour à tous, et bienvenue dans notre petite association.\n\nAujourd'hui, nous allons parler de ce"
    ));
    assert!(!plain.contains("-->") && !plain.contains("<i>") && !plain.contains("an8"));
    assert_eq!(plain.split("\n\n").count(), 6);
    assert_eq!(
        V.plain_text(VTT_SAMPLE).unwrap().split("\n\n").nth(2),
        Some("Les dons ont augmenté de 12 % & plus.")
    );
    assert_eq!(S.brief_text(SRT_SAMPLE).unwrap(), plain);
}

#[test]
fn a_position_code_is_read_on_the_first_line_only() {
    // Found by the fuzzer: a "{\\" whose "}" is on the next line is text, not a prefix.
    let text = "1\n00:00:01,000 --> 00:00:02,000\n{\\ae:0\nUn deux} trois\n";
    let pieces = S.pieces(text).unwrap();
    assert_eq!(pieces, ["{\\ae:0 Un deux} trois"]);
    let out = S.rebuild(text, &[shout(&pieces[0])]).unwrap();
    assert_eq!(line_counts(&out, &S), [2]);
}

#[test]
fn cues_without_text_are_kept_and_give_no_piece() {
    let text = "1\n00:00:01,000 --> 00:00:02,000\n\n2\n00:00:03,000 --> 00:00:04,000\nDu texte.\n";
    assert_eq!(S.pieces(text).unwrap(), ["Du texte."]);
    assert_eq!(
        S.rebuild(text, &["Some text.".into()]).unwrap(),
        text.replace("Du texte.", "Some text.")
    );
}

/// A subtitle file of a few cues whose text mixes words, tags, dashes, entities and odd spaces.
fn random_file(g: &mut Gen, dialect: Dialect) -> String {
    const WORDS: &[&str] = &[
        "Bonjour",
        "à",
        "tous",
        "- ",
        "<i>",
        "</i>",
        "<b>",
        "</b>",
        "<font color=\"red\">",
        "</font>",
        "{\\an8}",
        "&amp;",
        "<",
        ">",
        "\u{a0}",
        " ",
        " ",
        " ",
        "été",
        "<c.x>",
        "</c>",
        "<v Ana>",
        "<00:01.500>",
        "<a>",
        "</a>",
        "\t",
    ];
    let mut out = String::from(if dialect == Dialect::Vtt {
        "WEBVTT\n\n"
    } else {
        ""
    });
    for n in 1..=g.below(4) + 1 {
        out.push_str(
            &format!("{n}\n00:00:0{n},000 --> 00:00:0{n},500\n")
                .replace(',', if dialect == Dialect::Vtt { "." } else { "," }),
        );
        for _ in 0..g.below(4) + 1 {
            let line = g.pieces(WORDS, 8);
            let line = if line.trim().is_empty() {
                "x".to_string()
            } else {
                line
            };
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

#[test]
fn random_files_keep_their_frame_under_any_translation() {
    for dialect in [Dialect::Srt, Dialect::Vtt] {
        let codec = Subtitles(dialect);
        for_each_case(
            300,
            |g| {
                let file = random_file(g, dialect);
                let english: Vec<String> = (0..8).map(|_| g.any_text(30)).collect();
                (file, english)
            },
            |(file, english)| {
                assert_eq!(rebuild(&codec, file, str::to_string), *file);
                let pieces = codec.pieces(file).unwrap();
                let mut translations: Vec<Vec<String>> =
                    vec![pieces.iter().map(|p| shout(p)).collect()];
                translations.push(
                    (0..pieces.len())
                        .map(|i| english[i % english.len()].clone())
                        .filter(|t| !t.trim().is_empty())
                        .collect(),
                );
                for t in translations.iter().filter(|t| t.len() == pieces.len()) {
                    let out = codec.rebuild(file, t).unwrap();
                    assert_eq!(frame(&out, &codec), frame(file, &codec), "{out:?}");
                    for (a, b) in line_counts(&out, &codec)
                        .iter()
                        .zip(line_counts(file, &codec))
                    {
                        assert!(*a >= 1 && *a <= b, "{b} lines became {a}: {out:?}");
                    }
                }
            },
        );
    }
}
