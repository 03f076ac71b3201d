//! Writing a [`Comparison`]: one self-contained HTML page (inline CSS, no scripts, no external
//! assets) or Markdown.
//!
//! Word differences are against the reference when the document has one, else against the
//! first model's output: words only in this output are marked inserted, words only in the
//! baseline are shown struck through. Not for: gathering the comparison (`compare`).

use std::fmt::Write as _;

use similar::{ChangeTag, TextDiff};

use super::{Comparison, DocComparison, ModelSummary, Row};
use crate::eval::Scores;

/// A piece of a word diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Same(String),
    /// In the output, not in the baseline.
    Added(String),
    /// In the baseline, not in the output.
    Removed(String),
}
/// The word diff of `output` against `baseline`.
pub fn word_diff(baseline: &str, output: &str) -> Vec<Piece> {
    TextDiff::from_words(baseline, output)
        .iter_all_changes()
        .map(|c| {
            let text = c.value().to_string();
            match c.tag() {
                ChangeTag::Equal => Piece::Same(text),
                ChangeTag::Insert => Piece::Added(text),
                ChangeTag::Delete => Piece::Removed(text),
            }
        })
        .collect()
}

/// The baseline of a row for model `i`: the reference, else the first model's output (none for
/// the first model itself).
fn baseline(row: &Row, i: usize) -> Option<&str> {
    match &row.reference {
        Some(r) => Some(r),
        None if i > 0 => row.outputs.first().map(String::as_str),
        None => None,
    }
}

fn fmt_score(s: Option<&Scores>) -> (String, String) {
    match s {
        Some(s) => (
            s.bleu
                .as_ref()
                .map_or("–".into(), |b| format!("{:.2}", b.score)),
            s.chrf
                .as_ref()
                .map_or("–".into(), |c| format!("{:.2}", c.score)),
        ),
        None => ("–".into(), "–".into()),
    }
}

fn fmt_speed(m: &ModelSummary) -> String {
    if m.speed.output_tokens == 0 {
        return "–".into();
    }
    format!(
        "{:.1}{}",
        m.speed.output_tokens_per_s,
        if m.speed.cached { " (cached)" } else { "" }
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root { --ink:#1f2328; --muted:#656d76; --line:#d0d7de; --bg:#ffffff; --band:#f6f8fa;
  --add:#dafbe1; --add-ink:#116329; --del:#ffebe9; --del-ink:#a40e26; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.55 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  color:var(--ink); background:var(--bg); }
header { position:sticky; top:0; z-index:2; background:var(--band);
  border-bottom:1px solid var(--line); padding:10px 24px; box-shadow:0 1px 4px rgba(0,0,0,.06); }
header h1 { font-size:18px; margin:0 0 6px; }
header table { border-collapse:collapse; font-size:14px; }
header th, header td { padding:3px 14px 3px 0; text-align:left; }
header td.num, header th.num { text-align:right; font-variant-numeric:tabular-nums; }
header .legend { color:var(--muted); font-size:13px; margin-top:4px; }
main { padding:8px 24px 48px; max-width:1800px; }
section { margin-top:28px; }
section h2 { font-size:17px; margin:0 0 4px; font-family: ui-monospace, Menlo, monospace; }
.docscores { color:var(--muted); font-size:13px; margin-bottom:8px; }
.note { color:var(--del-ink); font-size:13px; }
table.rows { width:100%; border-collapse:collapse; table-layout:fixed; }
table.rows th { text-align:left; font-size:13px; color:var(--muted); font-weight:600;
  border-bottom:2px solid var(--line); padding:6px 10px; }
table.rows td { vertical-align:top; padding:8px 10px; border-bottom:1px solid var(--line);
  overflow-wrap:anywhere; white-space:pre-wrap; }
table.rows td.n { width:3em; color:var(--muted); text-align:right; }
table.rows td.src { background:#fbfbfc; }
table.rows td.ref { background:#f3f8ff; }
ins { background:var(--add); color:var(--add-ink); text-decoration:none; border-radius:2px; }
del { background:var(--del); color:var(--del-ink); border-radius:2px; }
.empty { color:var(--muted); font-style:italic; }
"#;

/// The report as one HTML page.
pub fn html(c: &Comparison, title: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    h.push_str(
        "<table>\n<tr><th>Model</th><th class=\"num\">BLEU</th><th class=\"num\">chrF2</th>\
         <th class=\"num\">Tokens/s</th><th class=\"num\">Failed</th></tr>\n",
    );
    for m in &c.models {
        let (bleu, chrf) = fmt_score(m.scores.as_ref());
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{bleu}</td><td class=\"num\">{chrf}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&m.name),
            fmt_speed(m),
            m.failures.len()
        );
    }
    let _ = writeln!(
        h,
        "</table>\n<div class=\"legend\">{} documents. Corpus scores over paragraphs with a \
         reference (sacrebleu defaults). Differences: <ins>added</ins> <del>removed</del> \
         against the reference, or against {} where there is none.</div>\n</header>\n<main>",
        c.documents.len(),
        c.models.first().map_or(String::new(), |m| escape(&m.name))
    );
    for d in &c.documents {
        html_document(&mut h, c, d);
    }
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

fn html_document(h: &mut String, c: &Comparison, d: &DocComparison) {
    let _ = writeln!(h, "<section>\n<h2>{}</h2>", escape(&d.name));
    let scores: Vec<String> = c
        .models
        .iter()
        .zip(&d.scores)
        .filter_map(|(m, s)| {
            s.as_ref().map(|s| {
                let (b, ch) = fmt_score(Some(s));
                format!("{}: BLEU {b}, chrF2 {ch}", escape(&m.name))
            })
        })
        .collect();
    if !scores.is_empty() {
        let _ = writeln!(h, "<div class=\"docscores\">{}</div>", scores.join(" · "));
    }
    if let Some(n) = &d.note {
        let _ = writeln!(h, "<div class=\"note\">{}</div>", escape(n));
    }
    h.push_str("<table class=\"rows\">\n<tr><th style=\"width:3em\">#</th><th>Source (fr)</th>");
    for m in &c.models {
        let _ = write!(h, "<th>{}</th>", escape(&m.name));
    }
    if d.rows.iter().any(|r| r.reference.is_some()) {
        h.push_str("<th>Reference</th>");
    }
    h.push_str("</tr>\n");
    for (n, row) in d.rows.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td class=\"n\">{}</td><td class=\"src\">{}</td>",
            n + 1,
            cell(&row.source)
        );
        for (i, out) in row.outputs.iter().enumerate() {
            h.push_str("<td>");
            match baseline(row, i) {
                _ if out.is_empty() => h.push_str("<span class=\"empty\">(nothing)</span>"),
                Some(base) => {
                    // A removed word directly followed by its replacement gets a space
                    // between them, so that the two do not read as one word.
                    let mut after_change: Option<bool> = None;
                    for p in word_diff(base, out) {
                        match p {
                            Piece::Same(t) => {
                                h.push_str(&escape(&t));
                                after_change = None;
                            }
                            Piece::Added(t) => {
                                if after_change == Some(false) {
                                    h.push(' ');
                                }
                                let _ = write!(h, "<ins>{}</ins>", escape(&t));
                                after_change = Some(true);
                            }
                            Piece::Removed(t) => {
                                if after_change == Some(true) {
                                    h.push(' ');
                                }
                                let _ = write!(h, "<del>{}</del>", escape(&t));
                                after_change = Some(false);
                            }
                        }
                    }
                }
                None => h.push_str(&escape(out)),
            }
            h.push_str("</td>");
        }
        if let Some(r) = &row.reference {
            let _ = write!(h, "<td class=\"ref\">{}</td>", cell(r));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n</section>\n");
}

fn cell(text: &str) -> String {
    if text.is_empty() {
        "<span class=\"empty\">(nothing)</span>".into()
    } else {
        escape(text)
    }
}

/// Markdown-safe text on one line: inline markup characters escaped, newlines as spaces.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push(' '),
            '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '<' | '>' | '#' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The report as Markdown: a scores table, then per document its scores and, per paragraph,
/// the source, each output (added words in bold, removed ones struck) and the reference.
pub fn markdown(c: &Comparison, title: &str) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# {}\n", md_text(title));
    m.push_str("| Model | BLEU | chrF2 | Tokens/s | Failed |\n|---|---:|---:|---:|---:|\n");
    for s in &c.models {
        let (bleu, chrf) = fmt_score(s.scores.as_ref());
        let _ = writeln!(
            m,
            "| {} | {bleu} | {chrf} | {} | {} |",
            md_text(&s.name),
            fmt_speed(s),
            s.failures.len()
        );
    }
    let _ = writeln!(
        m,
        "\n{} documents. Differences: **added**, ~~removed~~, against the reference or, where \
         there is none, against {}.",
        c.documents.len(),
        c.models.first().map_or(String::new(), |s| md_text(&s.name))
    );
    for d in &c.documents {
        let _ = writeln!(m, "\n## {}\n", md_text(&d.name));
        for (s, score) in c.models.iter().zip(&d.scores) {
            if let Some(score) = score {
                let (b, ch) = fmt_score(Some(score));
                let _ = writeln!(m, "- {}: BLEU {b}, chrF2 {ch}", md_text(&s.name));
            }
        }
        if let Some(n) = &d.note {
            let _ = writeln!(m, "- note: {n}");
        }
        for (n, row) in d.rows.iter().enumerate() {
            let _ = writeln!(m, "\n### Paragraph {}\n", n + 1);
            let _ = writeln!(m, "- **Source**: {}", md_text(&row.source));
            for (i, (s, out)) in c.models.iter().zip(&row.outputs).enumerate() {
                let _ = write!(m, "- **{}**: ", md_text(&s.name));
                match baseline(row, i) {
                    Some(base) if !out.is_empty() => {
                        for p in word_diff(base, out) {
                            match p {
                                Piece::Same(t) => m.push_str(&md_text(&t)),
                                Piece::Added(t) if t.trim().is_empty() => m.push_str(&t),
                                Piece::Removed(t) if t.trim().is_empty() => {}
                                Piece::Added(t) => {
                                    let _ = write!(m, "**{}**", md_text(t.trim()));
                                    m.push(' ');
                                }
                                Piece::Removed(t) => {
                                    let _ = write!(m, "~~{}~~ ", md_text(t.trim()));
                                }
                            }
                        }
                        m.push('\n');
                    }
                    _ => {
                        let _ = writeln!(m, "{}", md_text(out));
                    }
                }
            }
            if let Some(r) = &row.reference {
                let _ = writeln!(m, "- **Reference**: {}", md_text(r));
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_diff_marks_changed_words() {
        let d = word_diff("the cat sleeps", "the dog sleeps");
        assert!(d.contains(&Piece::Removed("cat".into())));
        assert!(d.contains(&Piece::Added("dog".into())));
        assert_eq!(d.first(), Some(&Piece::Same("the".into())));
    }

    /// One model, one document of one row.
    fn one_row(model: &str, source: &str, output: &str, reference: Option<&str>) -> Comparison {
        Comparison {
            models: vec![ModelSummary {
                name: model.into(),
                speed: Default::default(),
                scores: None,
                failures: vec![],
            }],
            documents: vec![DocComparison {
                name: "a.fr.txt".into(),
                rows: vec![Row {
                    source: source.into(),
                    outputs: vec![output.into()],
                    reference: reference.map(Into::into),
                }],
                scores: vec![None],
                note: None,
            }],
        }
    }

    #[test]
    fn html_escapes_model_text() {
        let c = one_row("m<1>", "<script>x</script>", "a & b", None);
        let page = html(&c, "t");
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;") && page.contains("a &amp; b"));
        assert!(page.contains("m&lt;1&gt;"));
        let md = markdown(&c, "t");
        assert!(md.contains("\\<script\\>") && md.contains("a & b"), "{md}");
    }

    #[test]
    fn html_keeps_a_replaced_word_apart_from_its_replacement() {
        let c = one_row(
            "m",
            "le chat dort",
            "the dog sleeps",
            Some("the cat sleeps"),
        );
        let page = html(&c, "t");
        assert!(page.contains("<del>cat</del> <ins>dog</ins>"), "{page}");
    }
}
