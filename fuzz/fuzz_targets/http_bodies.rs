//! The HTTP ingest protocols' decoders on arbitrary bodies: Elasticsearch `_bulk`, Splunk HEC,
//! Loki (JSON and snappy protobuf), OTLP (protobuf and JSON) and Firehose never panic; `_bulk`
//! reports one item per action line, in order; OTLP protobuf survives a decode–encode–decode
//! round trip with the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use seclog_formats::{bulk, firehose, hec, loki, otlp};

fuzz_target!(|data: &[u8]| {
    let items = bulk::decode_bulk(data);
    assert!(items.windows(2).all(|pair| pair[0].line < pair[1].line));
    for item in &items {
        assert!(item.source.is_some() != item.error.is_some());
    }
    let _ = hec::decode_hec_events(data);
    let _ = loki::decode_loki_json(data);
    let _ = loki::decode_loki_protobuf(data, 1 << 20);
    let _ = loki::parse_labels(&String::from_utf8_lossy(data));
    let _ = firehose::decode_firehose(data);
    let _ = otlp::decode_otlp_json(data);
    if let Ok(request) = ExportLogsServiceRequest::decode(data) {
        let logs = otlp::decode_otlp_protobuf(data).expect("decodes as it did");
        let again = otlp::decode_otlp_protobuf(&request.encode_to_vec()).expect("re-encoded");
        assert_eq!(again, logs);
    }
});
