use super::*;
use crate::text::format::{Source, HTML as FORMAT};
use crate::text::inline::shout;
use crate::text::testgen::{for_each_case, Gen};

const SAMPLE: &str = include_str!("../../../tests/fixtures/docs/sample.fr.html");

fn assert_kept(out: &str, kept: &[&str]) {
    for k in kept {
        assert!(out.contains(k), "{k} not kept in\n{out}");
    }
}

fn pieces(html: &str) -> Vec<String> {
    Html.pieces(html).unwrap()
}

fn rebuild(html: &str, f: impl Fn(&str) -> String) -> String {
    let p = pieces(html);
    let english: Vec<String> = p.iter().map(|s| f(s)).collect();
    Html.rebuild(html, &english).unwrap()
}

#[test]
fn pieces_of_the_sample() {
    let p = pieces(SAMPLE);
    let expected = [
        "Rapport d\u{2019}activité 2024",
        "Le bilan annuel de l'association",
        "Bilan de l'année",
        "Mon nom <a>est</a> Michel. Je dirige <b>cette association depuis</b> dix ans, \
         et vous pouvez lire <c>le rapport complet</c> en ligne.",
        "Les dons ont augmenté de 12\u{a0}% «\u{a0}grâce à vous\u{a0}» & à nos partenaires.",
        "Nos actions",
        "Distribution de repas chaque semaine",
        "Cours de français pour <a>adultes et enfants</a>",
        "Une ligne\npuis une autre",
        "Chiffres clés",
        "Action",
        "Nombre",
        "Repas servis",
        "4 200",
        "Notre équipe au complet.",
        "Des bénévoles devant le local",
        "Photo de l'équipe",
        "Lancez <a>make install</a> pour installer le logiciel, puis <b>Ctrl+C</b> pour arrêter.",
        "Nom en arabe : <a>مرحبا بالعالم</a>, en hébreu : <b>שלום עולם</b>, en chinois : \
         <c>你好，世界</c>.",
        "La marque <a>Petit Bateau</a> nous soutient.",
        "Votre adresse électronique",
        "Adresse électronique",
    ];
    assert_eq!(p, expected);
}

#[test]
fn identity_rebuilds_the_page_but_for_lang() {
    let out = rebuild(SAMPLE, str::to_string);
    assert_eq!(
        out,
        SAMPLE.replacen("<html lang=\"fr\">", "<html lang=\"en\">", 1)
    );
}

/// Writing every block anew from its own pieces (not taking the shortcut for an unchanged
/// piece) gives the source back where it escapes as this module does.
#[test]
fn blocks_written_anew_from_their_pieces_give_the_source() {
    let html = "<html lang=en><body>\n<p>Mon nom <b>est</b> Michel, <a href=\"x?a=1&amp;b=2\" title=\"T\">voir</a>.</p>\n\
                <li><strong class=x>Tout</strong> en <i>un</i> &amp; &lt;deux&gt;</li>\n\
                <p>Une ligne<br>puis <code>du code</code> et <img src=a.png alt=\"\"> une image</p>\n</body>";
    let page = analyse(html).unwrap();
    let mut edits = page.fixed.clone();
    edits.sort_by_key(|(r, _)| r.start);
    let mut n = 0;
    for u in &page.units {
        if let UnitKind::Block(b) = &u.kind {
            assert_eq!(b.render(html, &u.piece, &edits), &html[b.range.clone()]);
            n += 1;
        }
    }
    assert_eq!(n, 3);
}

#[test]
fn formatting_follows_the_english_words() {
    let html = "<p>Mon nom <b>est</b> Michel. Je dirige <em>cette association</em> et \
                <a href=\"https://ex.fr/?a=1&amp;b=2\">le rapport</a> est en ligne.</p>";
    let p = pieces(html);
    assert_eq!(
        p,
        ["Mon nom <a>est</a> Michel. Je dirige <b>cette association</b> et <c>le rapport</c> est en ligne."]
    );
    let english =
        "<c>The report</c> is online. My name <a>is</a> Michel and I run <b>this charity</b>.";
    let out = Html.rebuild(html, &[english.to_string()]).unwrap();
    assert_eq!(
        out,
        "<p><a href=\"https://ex.fr/?a=1&amp;b=2\">The report</a> is online. My name <b>is</b> \
         Michel and I run <em>this charity</em>.</p>"
    );

    // Nested elements: the space between two stretches stays inside the element around both.
    let html = "<p>Un <b>deux <i>trois</i></b> quatre</p>";
    assert_eq!(
        rebuild(html, shout),
        "<p>UN <b>DEUX <i>TROIS</i></b> QUATRE</p>"
    );

    // Upper-cased outside the markers: every tag around the same words as before.
    let out = rebuild(SAMPLE, shout);
    assert!(out.contains("MON NOM <b>EST</b> MICHEL. JE DIRIGE <em>CETTE ASSOCIATION DEPUIS</em> DIX ANS, ET VOUS POUVEZ LIRE <a href=\"https://exemple.fr/rapport?id=3&amp;v=2\" class=\"lien\">LE RAPPORT COMPLET</a> EN LIGNE."), "{out}");
    assert!(out.contains(
        "<li>COURS DE FRANÇAIS POUR <strong class=\"x\">ADULTES ET ENFANTS</strong></li>"
    ));
    assert!(out.contains("<li>UNE LIGNE<br>PUIS UNE AUTRE</li>"));
    assert!(out.contains("<title>RAPPORT D\u{2019}ACTIVITÉ 2024</title>"));
    assert!(out.contains("DE 12&nbsp;% «&nbsp;GRÂCE À VOUS&nbsp;» &amp; À NOS"));
}

#[test]
fn broken_markers_keep_the_text_and_drop_the_tags() {
    let html = "<p>Mon nom <b>est</b> Michel, <a href=\"x\">voir</a>.</p>";
    let out = Html
        .rebuild(html, &["My name <a>is Michel, <b>see</a></b>.".to_string()])
        .unwrap();
    assert_eq!(out, "<p>My name is Michel, see.</p>");
}

#[test]
fn script_style_code_and_comments_are_left_alone() {
    let out = rebuild(SAMPLE, shout);
    assert_kept(
        &out,
        &[
        "<script>\n    const message = \"Bonjour, ne pas traduire\";\n    if (a < b && c > d) { console.log(message); }\n  </script>",
        "<style>\n    p { color: #333; } /* pas de traduction ici */\n  </style>",
        "<!-- Commentaire : laisser tel quel -->",
        "<pre>Ce texte préformaté\n    reste tel quel.</pre>",
        "<p translate=\"no\">Ce paragraphe ne doit pas être traduit.</p>",
        "<code>make install</code>",
        "<kbd>Ctrl+C</kbd>",
        "<span translate=\"no\">Petit Bateau</span>",
        "<!DOCTYPE html>",
        ],
    );
    assert!(out.contains("LANCEZ <code>make install</code> POUR INSTALLER LE LOGICIEL, PUIS <kbd>Ctrl+C</kbd> POUR ARRÊTER."), "{out}");
}

#[test]
fn right_to_left_and_cjk_runs_are_kept_when_translated_as_themselves() {
    assert_kept(
        &rebuild(SAMPLE, shout),
        &[
            "<span lang=\"ar\" dir=\"rtl\">مرحبا بالعالم</span>",
            "<span lang=\"he\" dir=\"rtl\">שלום עולם</span>",
            "<span lang=\"zh\">你好，世界</span>",
        ],
    );
}

#[test]
fn alt_and_title_are_translated() {
    let out = rebuild(SAMPLE, shout);
    assert!(
        out.contains("<img src=\"photo.jpg\" alt=\"DES BÉNÉVOLES DEVANT LE LOCAL\" title=\"PHOTO DE L'ÉQUIPE\"> NOTRE ÉQUIPE AU COMPLET."),
        "{out}"
    );
    assert!(out.contains(
        "placeholder=\"VOTRE ADRESSE ÉLECTRONIQUE\" aria-label=\"ADRESSE ÉLECTRONIQUE\""
    ));
    assert!(out.contains("content=\"LE BILAN ANNUEL DE L'ASSOCIATION\""));
    // Blank values are no pieces.
    assert!(pieces("<img alt=\"&nbsp;\" title=\" \"><p>&nbsp;</p>").is_empty());
    // Quotes and ampersands are escaped; an unquoted value is quoted.
    let html = "<img alt=x title='a'>";
    let out = Html
        .rebuild(html, &["a \"b\" & c".into(), "it's".into()])
        .unwrap();
    assert_eq!(
        out,
        "<img alt=\"a &quot;b&quot; &amp; c\" title='it&#39;s'>"
    );
}

#[test]
fn lang_and_charset_are_set() {
    let html = "<html><head><meta charset=ISO-8859-1><title>Été</title></head></html>";
    assert_eq!(
        rebuild(html, str::to_string),
        "<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Été</title></head></html>"
    );
    let html = "<HTML class=x LANG='fr-FR'><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">";
    assert_eq!(
        rebuild(html, str::to_string),
        "<HTML class=x LANG='en'><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">"
    );
    let html = "<!doctype html><html lang=\"\"><p>x</p>";
    assert_eq!(
        rebuild(html, str::to_string),
        "<!doctype html><html lang=\"en\"><p>x</p>"
    );
    // A fragment has no <html> to mark.
    assert_eq!(rebuild("<p>Salut</p>", str::to_string), "<p>Salut</p>");
}

#[test]
fn character_references() {
    assert_eq!(
        decode("&eacute;t&eacute; &amp; &lt;b&gt;", false),
        "été & <b>"
    );
    assert_eq!(
        decode("&#233;&#xE9;&#X00e9;&#128;&#0;", false),
        "ééé€\u{fffd}"
    );
    assert_eq!(decode("&copy 2024 &notit; &amp", false), "© 2024 ¬it; &");
    assert_eq!(decode("?a=1&copy=2", true), "?a=1&copy=2");
    assert_eq!(decode("&unknown; & &;", false), "&unknown; & &;");
    // A long name running into a multi-byte character (found by the fuzzer).
    let long = format!("&{}«", "a".repeat(38));
    assert_eq!(
        escape_text(&long, None),
        format!("&amp;{}«", "a".repeat(38))
    );
    // An unknown reference stays one; a known one is escaped.
    assert_eq!(
        escape_text("&unknown; & &amp; <x>", None),
        "&unknown; &amp; &amp;amp; &lt;x&gt;"
    );
}

#[test]
fn inline_elements_without_words_stay_with_the_words_after_them() {
    let html = "<h2><a id=\"intro\"></a>Introduction</h2><p>Cliquez <img src=i.png> ici, <span class=ic></span>puis là.</p>";
    let p = pieces(html);
    assert_eq!(p, ["Introduction", "Cliquez <a>ici,</a> <b>puis là.</b>"]);
    let out = Html
        .rebuild(
            html,
            &[
                "INTRODUCTION".into(),
                "Click <a>here,</a> <b>then there.</b>".into(),
            ],
        )
        .unwrap();
    assert_eq!(
        out,
        "<h2><a id=\"intro\"></a>INTRODUCTION</h2><p>Click <img src=i.png> here, <span class=ic></span>then there.</p>"
    );
    // Markers dropped by the model: the image is kept, at the end.
    let out = Html
        .rebuild(
            html,
            &["Introduction".into(), "Click here, then there.".into()],
        )
        .unwrap();
    assert!(
        out.ends_with("<p>Click here, then there. <img src=i.png> <span class=ic></span></p>"),
        "{out}"
    );
}

#[test]
fn loose_text_of_a_div_is_a_piece() {
    let html = "<div>Du texte libre <p>un paragraphe</p> et la suite</div>";
    assert_eq!(
        pieces(html),
        ["Du texte libre", "un paragraphe", "et la suite"]
    );
    assert_eq!(
        rebuild(html, shout),
        "<div>DU TEXTE LIBRE <p>UN PARAGRAPHE</p> ET LA SUITE</div>"
    );
}

/// The words of a page outside its tags, entities decoded, lower-cased; tags separate words.
fn words(s: &str) -> Vec<String> {
    let mut text = String::new();
    let mut in_tag = false;
    for (i, c) in s.char_indices() {
        let opens = s[i + c.len_utf8()..]
            .starts_with(|n: char| n.is_ascii_alphabetic() || "/!?".contains(n));
        match c {
            '<' if !in_tag && opens => {
                // A tag separates words (where whitespace moves, at a block's edge).
                in_tag = s[i..].contains('>');
                text.push(' ');
            }
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    decode(&text, false)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[test]
fn malformed_markup_loses_no_text() {
    for html in [
        "<p>Un <b>deux <i>trois</b> quatre</i> cinq</p>",
        "<p>Un </b> deux <b>trois</p><p>quatre</b> cinq",
        "<ul><li>Un <b>deux<li>trois</ul>",
        "<p>Un <code>deux",
        "<p>Un <!-- x --> deux &bogus; &#xZZ; trois <",
        "</p>texte<p",
        // Found by the property test: inline elements left open with no words in them.
        "<p>deux mots<em><a><a href=\"x\"></i> suite",
        "<p>Été<span translate=no>&nbsp;</span> suite",
        "<span translate=no>&nbsp;Été</span><img src=x>&eacute;<code>deux mots<p>",
    ] {
        let out = rebuild(html, shout);
        assert_eq!(words(&out), words(html), "{html} gave {out}");
        assert_eq!(rebuild(html, str::to_string), html);
    }
}

#[test]
fn deep_and_huge_pages_are_walked_in_linear_time() {
    let n = 100_000;
    let deep = format!("<p>{}mot{}</p>", "<b>".repeat(n), "</b>".repeat(n));
    let start = std::time::Instant::now();
    let p = pieces(&deep);
    assert_eq!(p.len(), 1);
    assert_eq!(rebuild(&deep, str::to_string), deep);
    let deep_divs = format!("{}texte{}", "<div>".repeat(n), "</div>".repeat(n));
    assert_eq!(pieces(&deep_divs), ["texte"]);
    let wide: String = (0..n).map(|i| format!("<span>mot{i}</span> ")).collect();
    let wide = format!("<p>{wide}</p>");
    let p = pieces(&wide);
    assert!(p.len() >= n / MAX_STYLES, "{}", p.len());
    let out = rebuild(&wide, shout);
    assert!(out.contains("<span>MOT99999</span>"));
    // As many attributes as blocks, all translated.
    let many: String = (0..n)
        .map(|i| format!("<p>mot {i}</p><img alt=\"image {i}\">\n"))
        .collect();
    let out = rebuild(&many, shout);
    assert!(out.ends_with("<p>MOT 99999</p><img alt=\"IMAGE 99999\">\n"));
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
}

#[test]
fn plain_and_brief_text_are_the_blocks_text() {
    let html = "<title>Titre</title><p>Un <b>deux</b></p><img alt=\"image\"><p>trois</p>";
    assert_eq!(Html.plain_text(html).unwrap(), "Titre\n\nUn deux\n\ntrois");
    assert_eq!(Html.brief_text(html).unwrap(), "Titre\n\nUn deux\n\ntrois");
}

#[test]
fn a_page_over_the_size_limit_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.fr.html");
    let limit = 1024;
    let mut page = String::from("<html><body>");
    while page.len() <= limit as usize {
        page.push_str("<p>Un paragraphe de plus.</p>\n");
    }
    std::fs::write(&path, &page).unwrap();
    match FORMAT.read(&path, limit) {
        Err(crate::text::read::ReadError::TooLarge { size, limit: l }) => {
            assert_eq!((size, l), (page.len() as u64, limit))
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let doc = FORMAT
        .read(&path, crate::text::read::DEFAULT_MAX_BYTES)
        .unwrap();
    assert!(matches!(doc, Source::Text(_)));
}

/// Pages made of tags, words, references and comments, well formed or not: rebuilt from
/// their pieces they are the same page, and upper-cased they keep every word in order. (No
/// `<title>`: its tags are text, which `words` cannot tell.)
#[test]
fn random_pages_keep_their_bytes_and_their_words() {
    const PARTS: &[&str] = &[
        "<p>",
        "</p>",
        "<b>",
        "</b>",
        "<i>",
        "</i>",
        "<a href=\"x?a=1&amp;b\">",
        "</a>",
        "<br>",
        "<img alt=\"image\" src=x>",
        "&eacute;",
        "&amp;",
        "&#233;",
        "&nbsp;",
        "&lt;",
        "<!-- c -->",
        "<script>x<y</script>",
        "<code>",
        "</code>",
        "<li>",
        "<span translate=no>",
        "</span>",
        "<div>",
        "</div>",
        "<pre>",
        "</pre>",
        " ",
        " ",
        "\n",
        "mot",
        "Été",
        "deux mots",
        "<a>",
        "</c>",
        "<",
        ">",
        "&",
        "<td>",
        "<em>",
        "</em>",
        "<span></span>",
    ];
    for_each_case(
        3000,
        |g: &mut Gen| g.pieces(PARTS, 40),
        |page: &String| {
            assert_eq!(rebuild(page, str::to_string), *page);
            let out = rebuild(page, shout);
            assert_eq!(words(&out), words(page), "{out}");
            assert_eq!(pieces(&out).len(), pieces(page).len(), "{out}");
        },
    );
}
