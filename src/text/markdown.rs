//! Cuts a Markdown document into prose to translate and structure to keep, such that the pieces
//! put back together give the document exactly: headings, list items, blockquotes and table cells
//! keep their markers outside the prose; code, HTML, front matter, separator rows and blank lines
//! are kept verbatim.
//!
//! The block structure comes from `pulldown-cmark` (CommonMark plus tables, footnotes, task lists,
//! heading attributes and YAML/TOML front matter); this module only maps its source offsets back
//! onto the text.
//!
//! Not for: rendering, or rewriting Markdown. Inline markup (emphasis, links, inline code) stays
//! inside the prose that the translator sees; it is the translator's job to keep it.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use std::ops::Range;

use super::format::{Format, FormatError, TextCodec};

/// Markdown documents: `.md` and `.markdown`, translated as `.md`.
pub static MARKDOWN: Format = Format {
    name: "markdown",
    fingerprint: "Markdown",
    extensions: &["md", "markdown"],
    output_extension: "md",
    codec: &Markdown,
};

/// One piece of a Markdown document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block<'a> {
    /// Prose (`body`) with the markup around it on its line(s): `prefix` holds markers such as
    /// `## `, `- `, `1. `, `> ` or `| ` and indentation; `suffix` holds what follows the prose
    /// up to and including the line break (a closing ` ##`, ` |`, `{#id}`...).
    Text {
        prefix: &'a str,
        body: &'a str,
        suffix: &'a str,
    },
    /// Text that must not be translated: code, HTML, front matter, blank lines, rules...
    Verbatim(&'a str),
}

impl Block<'_> {
    /// The block's source text, as it appears in the document.
    pub fn source(&self) -> String {
        match self {
            Block::Text {
                prefix,
                body,
                suffix,
            } => [*prefix, *body, *suffix].concat(),
            Block::Verbatim(v) => (*v).to_owned(),
        }
    }
}

/// Splits a Markdown document into blocks that rebuild it exactly: concatenating
/// `prefix + body + suffix` of each [`Block::Text`] and each [`Block::Verbatim`] in order gives
/// `md`. Every `body` is non-empty, starts and ends with non-whitespace, and holds prose of a
/// paragraph, heading, list item, blockquote, table cell or footnote, inline markup included.
///
/// A paragraph whose continuation lines carry container markers (`> ` in a blockquote) is cut
/// into one block per line, so that the markers stay out of the prose.
pub fn blocks(md: &str) -> Vec<Block<'_>> {
    assemble(md, &prose_ranges(md))
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS
}

fn is_inline(tag: &Tag) -> bool {
    matches!(
        tag,
        Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript
            | Tag::Link { .. }
            | Tag::Image { .. }
    )
}

fn is_inline_end(tag: &TagEnd) -> bool {
    matches!(
        tag,
        TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Link
            | TagEnd::Image
    )
}

/// Blocks whose content is never prose.
fn is_verbatim(tag: &Tag) -> bool {
    matches!(
        tag,
        Tag::CodeBlock(_) | Tag::HtmlBlock | Tag::MetadataBlock(_)
    )
}

fn is_verbatim_end(tag: &TagEnd) -> bool {
    matches!(
        tag,
        TagEnd::CodeBlock | TagEnd::HtmlBlock | TagEnd::MetadataBlock(_)
    )
}

/// The byte ranges of prose, in order, not overlapping, trimmed.
fn prose_ranges(md: &str) -> Vec<Range<usize>> {
    let mut bodies = Vec::new();
    // Source ranges of the inline events of the current run of prose.
    let mut run: Vec<Range<usize>> = Vec::new();
    let mut verbatim_depth = 0usize;
    for (event, range) in Parser::new_ext(md, options()).into_offset_iter() {
        let inline = match &event {
            Event::Start(tag) => {
                if is_verbatim(tag) {
                    verbatim_depth += 1;
                }
                is_inline(tag)
            }
            Event::End(tag) => {
                if is_verbatim_end(tag) {
                    verbatim_depth = verbatim_depth.saturating_sub(1);
                }
                if is_inline_end(tag) {
                    // Already covered by the range of its Start.
                    continue;
                }
                false
            }
            Event::Text(_)
            | Event::Code(_)
            | Event::InlineMath(_)
            | Event::InlineHtml(_)
            | Event::FootnoteReference(_)
            | Event::SoftBreak
            | Event::HardBreak => true,
            Event::Html(_) | Event::DisplayMath(_) | Event::Rule | Event::TaskListMarker(_) => {
                false
            }
        };
        if inline && verbatim_depth == 0 {
            run.push(range);
        } else {
            split_run(md, &run, &mut bodies);
            run.clear();
        }
    }
    split_run(md, &run, &mut bodies);
    bodies
}

/// Turns one run of inline events into prose ranges: one range, or one per line when lines after
/// the first start with container markers.
fn split_run(md: &str, run: &[Range<usize>], bodies: &mut Vec<Range<usize>>) {
    let (Some(first), Some(end)) = (run.first(), run.iter().map(|r| r.end).max()) else {
        return;
    };
    let mut start = first.start;
    let mut next_event = 0;
    let mut pos = start;
    while let Some(nl) = md.get(pos..end).and_then(|s| s.find('\n')) {
        let line_start = pos + nl + 1;
        pos = line_start;
        while next_event < run.len() && run[next_event].start < line_start {
            next_event += 1;
        }
        let Some(content) = run.get(next_event).map(|r| r.start) else {
            break;
        };
        let lead = md.get(line_start..content).unwrap_or("");
        if !lead.trim().is_empty() {
            push_trimmed(md, start..line_start, bodies);
            start = content;
            pos = content.max(pos);
        }
    }
    push_trimmed(md, start..end, bodies);
}

fn push_trimmed(md: &str, range: Range<usize>, bodies: &mut Vec<Range<usize>>) {
    let Some(text) = md.get(range.clone()) else {
        return;
    };
    let start = range.start + (text.len() - text.trim_start().len());
    let end = range.start + text.trim_end().len();
    let after_previous = bodies.last().is_none_or(|b| b.end <= start);
    if start < end && after_previous {
        bodies.push(start..end);
    }
}

/// Distributes the text around the prose ranges into prefixes, suffixes and verbatim blocks.
fn assemble<'a>(md: &'a str, bodies: &[Range<usize>]) -> Vec<Block<'a>> {
    let mut out = Vec::new();
    let mut cursor = 0;
    for (k, body) in bodies.iter().enumerate() {
        let line_start = md[cursor..body.start]
            .rfind('\n')
            .map_or(cursor, |p| cursor + p + 1);
        if line_start > cursor {
            out.push(Block::Verbatim(&md[cursor..line_start]));
        }
        let limit = bodies.get(k + 1).map_or(md.len(), |next| next.start);
        let gap = &md[body.end..limit];
        let suffix_end = match gap.find('\n') {
            Some(p) => body.end + p + 1,
            // The next prose is on the same line (a table row): its marker goes to its prefix.
            None if limit < md.len() => body.end + (gap.len() - gap.trim_start().len()),
            None => md.len(),
        };
        out.push(Block::Text {
            prefix: &md[line_start..body.start],
            body: &md[body.clone()],
            suffix: &md[body.end..suffix_end],
        });
        cursor = suffix_end;
    }
    if cursor < md.len() {
        out.push(Block::Verbatim(&md[cursor..]));
    }
    out
}

/// Markdown: the prose of each block ([`markdown::blocks`]) is translated; markup, code and
/// blank lines are kept byte for byte.
struct Markdown;

impl TextCodec for Markdown {
    fn pieces(&self, text: &str) -> Result<Vec<String>, FormatError> {
        Ok(blocks(text)
            .into_iter()
            .filter_map(|b| match b {
                Block::Text { body, .. } if !body.trim().is_empty() => Some(body.to_string()),
                _ => None,
            })
            .collect())
    }

    fn rebuild(&self, text: &str, translations: &[String]) -> Result<String, FormatError> {
        let mut translated = translations.iter();
        let mut out = String::with_capacity(text.len());
        for b in blocks(text) {
            match b {
                Block::Text {
                    prefix,
                    body,
                    suffix,
                } => {
                    out.push_str(prefix);
                    if body.trim().is_empty() {
                        out.push_str(body);
                    } else {
                        out.push_str(translated.next().map_or("", String::as_str));
                    }
                    out.push_str(suffix);
                }
                Block::Verbatim(v) => out.push_str(v),
            }
        }
        Ok(out)
    }

    fn plain_text(&self, text: &str) -> Result<String, FormatError> {
        Ok(to_text(text))
    }
}

/// The text of a Markdown document: each heading, paragraph, list item or code block becomes a
/// block of its own (blank lines between blocks), line breaks inside a block are kept, and all
/// markup is dropped.
pub fn to_text(markdown: &str) -> String {
    let mut out = String::new();
    let break_block = |out: &mut String| {
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
        }
    };
    for event in Parser::new(markdown) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Start(
                Tag::Paragraph
                | Tag::Heading { .. }
                | Tag::Item
                | Tag::List(_)
                | Tag::BlockQuote(_)
                | Tag::CodeBlock(_)
                | Tag::TableRow
                | Tag::TableHead,
            )
            | Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::List(_)
                | TagEnd::BlockQuote(_)
                | TagEnd::CodeBlock
                | TagEnd::TableRow
                | TagEnd::TableHead,
            )
            | Event::Rule => break_block(&mut out),
            Event::Start(Tag::TableCell) | Event::End(TagEnd::TableCell) => out.push(' '),
            _ => {}
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::testgen::for_each_case;

    fn rebuild(blocks: &[Block]) -> String {
        blocks.iter().map(Block::source).collect()
    }

    /// (prefix, body, suffix) of each Text block.
    fn texts<'a>(blocks: &[Block<'a>]) -> Vec<(&'a str, &'a str, &'a str)> {
        blocks
            .iter()
            .filter_map(|b| match *b {
                Block::Text {
                    prefix,
                    body,
                    suffix,
                } => Some((prefix, body, suffix)),
                Block::Verbatim(_) => None,
            })
            .collect()
    }

    fn verbatims<'a>(blocks: &[Block<'a>]) -> Vec<&'a str> {
        blocks
            .iter()
            .filter_map(|b| match *b {
                Block::Verbatim(v) => Some(v),
                Block::Text { .. } => None,
            })
            .collect()
    }

    fn parse(md: &str) -> Vec<Block<'_>> {
        let b = blocks(md);
        assert_eq!(rebuild(&b), md);
        b
    }

    #[test]
    fn headings_keep_their_markers() {
        let md = "# Le titre\n\n## Une section ##\n\nSous-titre\n----------\n";
        let b = parse(md);
        assert_eq!(
            texts(&b),
            [
                ("# ", "Le titre", "\n"),
                ("## ", "Une section", " ##\n"),
                ("", "Sous-titre", "\n"),
            ]
        );
        assert_eq!(verbatims(&b), ["\n", "\n", "----------\n"]);
    }

    #[test]
    fn heading_attributes_stay_out_of_the_prose() {
        let b = parse("## Résumé {#resume}\n");
        assert_eq!(texts(&b), [("## ", "Résumé", " {#resume}\n")]);
    }

    #[test]
    fn nested_lists() {
        let md = "- Premier point\n  - Sous-point un\n  - Sous-point deux\n- Second point\n\n1. Étape une\n2. Étape deux\n";
        let b = parse(md);
        assert_eq!(
            texts(&b),
            [
                ("- ", "Premier point", "\n"),
                ("  - ", "Sous-point un", "\n"),
                ("  - ", "Sous-point deux", "\n"),
                ("- ", "Second point", "\n"),
                ("1. ", "Étape une", "\n"),
                ("2. ", "Étape deux", "\n"),
            ]
        );
    }

    #[test]
    fn list_item_continuation_lines_stay_in_one_body() {
        let b = parse("- Un point qui continue\n  sur la ligne suivante.\n");
        assert_eq!(
            texts(&b),
            [(
                "- ",
                "Un point qui continue\n  sur la ligne suivante.",
                "\n"
            )]
        );
    }

    #[test]
    fn task_list_marker_is_not_prose() {
        let b = parse("- [ ] Relire le texte\n- [x] Traduire\n");
        assert_eq!(
            texts(&b),
            [
                ("- [ ] ", "Relire le texte", "\n"),
                ("- [x] ", "Traduire", "\n")
            ]
        );
    }

    #[test]
    fn blockquotes_keep_markers_on_every_line() {
        let md = "> Une citation célèbre\n> sur deux lignes.\n>\n> > Imbriquée.\n";
        let b = parse(md);
        assert_eq!(
            texts(&b),
            [
                ("> ", "Une citation célèbre", "\n"),
                ("> ", "sur deux lignes.", "\n"),
                ("> > ", "Imbriquée.", "\n"),
            ]
        );
        assert_eq!(verbatims(&b), [">\n"]);
    }

    #[test]
    fn code_stays_verbatim() {
        let md = "Avant le code.\n\n```rust\n// Un commentaire en français.\nlet x = \"Bonjour\";\n```\n\n    code indenté en français\n\nAprès.\n";
        let b = parse(md);
        assert_eq!(
            texts(&b),
            [("", "Avant le code.", "\n"), ("", "Après.", "\n")]
        );
        assert_eq!(
            verbatims(&b),
            [
                "\n```rust\n// Un commentaire en français.\nlet x = \"Bonjour\";\n```\n\n    code indenté en français\n\n"
            ]
        );
    }

    #[test]
    fn inline_code_and_links_stay_in_the_body() {
        let md = "Lancez `cargo test` puis lisez [la *documentation*](https://exemple.fr \"titre\") ![logo](a.png).\n";
        let b = parse(md);
        assert_eq!(
            texts(&b),
            [(
                "",
                "Lancez `cargo test` puis lisez [la *documentation*](https://exemple.fr \"titre\") ![logo](a.png).",
                "\n"
            )]
        );
    }

    #[test]
    fn paragraph_starting_and_ending_with_markup() {
        let b = parse("**Important** : lisez [ceci](x).\n");
        assert_eq!(texts(&b), [("", "**Important** : lisez [ceci](x).", "\n")]);
    }

    #[test]
    fn front_matter_html_and_rules_are_verbatim() {
        let md = "---\ntitle: Le rapport\nlang: fr\n---\n\n<div class=\"note\">\nUn bloc HTML.\n</div>\n\nTexte.\n\n***\n\n+++\nnon = \"pas du front matter ici\"\n+++\n";
        let b = parse(md);
        assert!(verbatims(&b)[0].starts_with("---\ntitle: Le rapport\nlang: fr\n---\n"));
        let bodies: Vec<&str> = texts(&b).iter().map(|t| t.1).collect();
        assert!(bodies.contains(&"Texte."));
        assert!(!bodies
            .iter()
            .any(|b| b.contains("rapport") || b.contains("HTML")));
    }

    #[test]
    fn toml_front_matter_is_verbatim() {
        let b = parse("+++\ntitre = \"Rapport\"\n+++\n\nCorps.\n");
        assert_eq!(verbatims(&b), ["+++\ntitre = \"Rapport\"\n+++\n\n"]);
        assert_eq!(texts(&b), [("", "Corps.", "\n")]);
    }

    #[test]
    fn tables_cells_are_prose_and_separator_rows_verbatim() {
        let md = "| Nom | Ville |\n|-----|-------|\n| Jean | Paris |\n";
        let b = parse(md);
        assert_eq!(
            texts(&b),
            [
                ("| ", "Nom", " "),
                ("| ", "Ville", " |\n"),
                ("| ", "Jean", " "),
                ("| ", "Paris", " |\n"),
            ]
        );
        assert_eq!(verbatims(&b), ["|-----|-------|\n"]);
    }

    #[test]
    fn footnotes_and_reference_definitions() {
        let md = "Un fait[^1].\n\n[^1]: La source du fait.\n\n[lien]: https://exemple.fr\n";
        let b = parse(md);
        assert_eq!(
            texts(&b),
            [
                ("", "Un fait[^1].", "\n"),
                ("[^1]: ", "La source du fait.", "\n")
            ]
        );
        assert_eq!(
            verbatims(&b).last(),
            Some(&"\n[lien]: https://exemple.fr\n")
        );
    }

    #[test]
    fn no_trailing_newline_and_crlf() {
        let b = parse("# Titre\r\n\r\nFin");
        assert_eq!(texts(&b), [("# ", "Titre", "\r\n"), ("", "Fin", "")]);
        assert!(blocks("").is_empty());
        assert_eq!(parse("\n\n"), [Block::Verbatim("\n\n")]);
    }

    const MARKDOWN_PIECES: &[&str] = &[
        "# ",
        "## ",
        "- ",
        "  - ",
        "1. ",
        "> ",
        ">",
        "| a | b |\n",
        "|---|---|\n",
        "```\n",
        "~~~",
        "    ",
        "\t",
        "\n",
        "\n\n",
        "\r\n",
        "*",
        "**",
        "_",
        "`",
        "[x](y)",
        "[^1]",
        "[^1]: ",
        "<div>",
        "</div>",
        "<!-- c -->",
        "---\n",
        "+++\n",
        "Texte",
        "é",
        "«",
        " ",
        "{#id}",
        "\\",
        "![i](j)",
        "[ ] ",
        "***\n",
        "===\n",
        "&amp;",
    ];

    fn check_blocks(md: &str) {
        let b = blocks(md);
        assert_eq!(rebuild(&b), md);
        for block in &b {
            if let Block::Text { body, .. } = block {
                assert!(!body.is_empty());
                assert_eq!(*body, body.trim());
            }
        }
    }

    #[test]
    fn blocks_rebuild_markdown_like_input() {
        for_each_case(
            3000,
            |g| g.pieces(MARKDOWN_PIECES, 40),
            |md| check_blocks(md),
        );
    }

    #[test]
    fn blocks_rebuild_any_input() {
        for_each_case(3000, |g| g.any_text(200), |md| check_blocks(md));
    }
}
