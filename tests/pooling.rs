//! Issue 19, item 2: a Marian translator that pools the sentences of concurrent calls
//! (`backends::pool`) gives every call exactly what it gets alone, whatever shares its
//! batches; and `transbrief run` writes the same bytes pooled and unpooled.

use std::path::Path;
use std::sync::{Arc, Barrier};

use transbrief::backends::pool::Budget;
use transbrief::backends::seq2seq::{load_marian_translator, MarianTranslator, Seq2SeqFiles};
use transbrief::nn::linear::LinearKind;

fn marian(kind: LinearKind) -> MarianTranslator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seq2seq/marian");
    load_marian_translator(
        &Seq2SeqFiles::from_dir(&dir),
        kind,
        &candle_core::Device::Cpu,
    )
    .expect("marian fixture")
}

/// Documents of one to four sentences, of unequal lengths, so that pooled batches mix
/// documents and pad differently than each document alone.
fn documents() -> Vec<Vec<&'static str>> {
    vec![
        vec![
            "Le chat dort.",
            "Il fait beau aujourd'hui à Paris, et les terrasses sont pleines.",
        ],
        vec!["Bonjour."],
        vec![
            "Le gouvernement a annoncé une nouvelle loi sur l'énergie et les transports publics.",
            "Trois.",
            "Les marchés restent calmes malgré la hausse des prix.",
            "Selon l'ONU, cinq cents personnes vivent désormais dans les camps.",
        ],
        vec!["Des milliers de familles ont fui vers le nord, a dit une mère de famille."],
        vec![
            "Rien n'a encore été annoncé.",
            "Les habitants attendent de l'aide depuis mardi.",
        ],
        vec!["Les combats ont repris mercredi à l'est de la ville."],
    ]
}

fn pooled_equals_alone(kind: LinearKind) {
    let docs = documents();
    let alone: Vec<Vec<String>> = {
        let plain = marian(kind);
        docs.iter()
            .map(|d| plain.translate_sentences(d).expect("alone").value)
            .collect()
    };
    // A small budget, so the pool cuts several batches; every document calls at once.
    let budget = Budget {
        tokens: 160,
        sentences: 4,
        callers: docs.len(),
    };
    let pooled = Arc::new(marian(kind).pooled(budget).expect("pool"));
    let start = Arc::new(Barrier::new(docs.len()));
    let handles: Vec<_> = (docs.iter().cloned())
        .map(|d| {
            let (pooled, start) = (pooled.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                pooled.translate_sentences(&d).expect("pooled").value
            })
        })
        .collect();
    let got: Vec<Vec<String>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        got, alone,
        "pooled translations differ from each document alone"
    );
    let (_, stats) = pooled.pool_stats().expect("pooled");
    let sentences: usize = docs.iter().map(Vec::len).sum();
    assert_eq!(stats.calls, docs.len() as u64);
    assert_eq!(stats.sentences, sentences as u64);
    // Fewer batches than documents: some batch held the sentences of several documents.
    assert!(stats.batches < docs.len() as u64, "{stats:?}");
    assert!(stats.widest <= 4, "the sentence cap holds: {stats:?}");
}

#[test]
fn pooled_translations_equal_each_document_alone_f32() {
    pooled_equals_alone(LinearKind::F32);
}

#[test]
fn pooled_translations_equal_each_document_alone_int8() {
    pooled_equals_alone(LinearKind::Int8);
}

#[test]
fn an_empty_call_and_sequential_calls_go_through_the_pool() {
    let pooled = marian(LinearKind::F32)
        .pooled(Budget::default())
        .expect("pool");
    let plain = marian(LinearKind::F32);
    assert!(pooled
        .translate_sentences(&[])
        .expect("empty")
        .value
        .is_empty());
    for doc in documents() {
        assert_eq!(
            pooled.translate_sentences(&doc).expect("pooled").value,
            plain.translate_sentences(&doc).expect("plain").value
        );
    }
}
