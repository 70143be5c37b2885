//! Test-only: the recorded vendor payloads in the repository's `fixtures/`, as the
//! tests of more than one module read them.

/// Every chunk of the recorded OpenAI streams, in order.
pub(crate) fn recorded_chunks() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/openai");
    let mut chunks = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sse") {
            let events = crate::sse::Decoder::new()
                .feed(&std::fs::read(&path).unwrap())
                .unwrap();
            chunks.extend(events.into_iter().map(|e| e.data.into_bytes()));
        }
    }
    chunks
}
