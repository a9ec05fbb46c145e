//! Entry points for the fuzz targets in `fuzz/` and for their seeded,
//! bounded runs in `tests/fuzz_seeded.rs`: the same code under a
//! coverage-guided fuzzer and under CI. Each takes arbitrary bytes and
//! panics only when the code under test breaks a rule (a panic, a wrong
//! status code, a broken invariant); for any input it must return.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use http_body_util::{BodyExt, Full};
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use tonic::codegen::{http, Bytes};

use crate::engine::{Engine, EngineConfig};
use crate::grpc::feed::EventFeed;
use crate::grpc::proto::allocation_service_server::AllocationServiceServer;
use crate::grpc::proto::FILE_DESCRIPTOR_SET;
use crate::grpc::Service;
use crate::storage::codec::Reader;
use crate::storage::{journal, snapshot, store};

const SERVICE: &str = "allocation.v1.AllocationService";

/// Decode a journal record's payload and install whatever decodes: no
/// panic, and the ledger's audit runs to its end.
pub fn journal_payload(bytes: &[u8]) {
    let engine = Engine::new(EngineConfig::default());
    let mut reader = Reader::new(bytes, 0);
    while !reader.is_empty() {
        match reader.effect() {
            Ok(effect) => engine.restore(effect),
            Err(_) => break,
        }
    }
    let _ = engine.audit();
}

/// Read bytes as a journal segment, both as the last one and not.
pub fn segment(bytes: &[u8]) {
    for is_last in [false, true] {
        let _ = journal::parse_segment(bytes, Path::new("fuzz.log"), 0, is_last, |_, _| Ok(()));
    }
}

/// Read bytes as a snapshot and install it.
pub fn snapshot(bytes: &[u8]) {
    let engine = Engine::new(EngineConfig::default());
    let _ = snapshot::parse(bytes, Path::new("fuzz.snap"), |effect| {
        engine.restore(effect)
    });
    let _ = engine.audit();
}

/// Lay `image` out as a data directory (see `data_dir_image`) in `dir`
/// and recover from it twice: reading only, then repairing. A recovery
/// that succeeds holds no broken invariant (recovery checks, then says).
pub fn recovery(image: &[u8], dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the fuzz data dir");
    for (name, bytes) in data_dir_image(image) {
        std::fs::write(dir.join(name), bytes).expect("write a fuzz file");
    }
    for repair in [false, true] {
        let engine = Engine::new(EngineConfig::default());
        if store::recover(dir, &engine, false, repair).is_ok() {
            assert!(engine.audit().violations.is_empty());
        }
    }
}

/// Files from bytes: repeated `kind (u8) | number (u8) | length (u16 LE) |
/// bytes`, kind even a journal segment, odd a snapshot, numbered by `number`.
pub fn data_dir_image(image: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut rest = image;
    while let [kind, number, low, high, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*low, *high])).min(tail.len());
        let name = if kind % 2 == 0 {
            format!("journal-{number:020}.log")
        } else {
            format!("snapshot-{number:020}.snap")
        };
        files.push((name, tail[..len].to_vec()));
        rest = &tail[len..];
    }
    files
}

/// The methods a request can be sent to: every unary RPC of the service
/// (the streams stay open until the client or the server ends them).
pub fn unary_methods() -> &'static [(String, String)] {
    static METHODS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let service = descriptors()
            .file
            .iter()
            .flat_map(|file| &file.service)
            .find(|service| service.name() == "AllocationService")
            .expect("the service is described");
        service
            .method
            .iter()
            .filter(|method| !method.server_streaming() && !method.client_streaming())
            .map(|method| (method.name().to_string(), method.input_type().to_string()))
            .collect()
    })
}

fn descriptors() -> &'static FileDescriptorSet {
    static SET: OnceLock<FileDescriptorSet> = OnceLock::new();
    SET.get_or_init(|| {
        FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("the compiled-in set decodes")
    })
}

/// Send `body` as a gRPC request to `method` of a memory-only server,
/// in process, through the same generated server code and codec as the
/// network. Returns the status code. A request may be refused for any
/// reason but never with INTERNAL or UNKNOWN (a decode failure or a bug
/// that reached the client as one).
pub fn grpc_request(method: &str, body: &[u8]) -> tonic::Code {
    let (runtime, server) = in_process_server();
    let mut frame = Vec::with_capacity(body.len() + 5);
    frame.push(0); // not compressed
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(body);
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("/{SERVICE}/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(Full::new(Bytes::from(frame))))
        .expect("a well-formed request");
    let (code, message) = runtime.block_on(async {
        let response = tower::ServiceExt::oneshot(server.clone(), request)
            .await
            .expect("the generated server never fails as a service");
        let (parts, body) = response.into_parts();
        let trailers = body
            .collect()
            .await
            .ok()
            .and_then(|body| body.trailers().cloned());
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .or_else(|| trailers.as_ref().and_then(|t| t.get(name)))
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let status = header("grpc-status")
            .and_then(|status| status.parse::<i32>().ok())
            .expect("every response carries grpc-status");
        (tonic::Code::from_i32(status), header("grpc-message"))
    });
    assert!(
        !matches!(code, tonic::Code::Internal | tonic::Code::Unknown),
        "{method} answered {code:?}: {message:?}"
    );
    code
}

type InProcess = (tokio::runtime::Runtime, AllocationServiceServer<Service>);

fn in_process_server() -> &'static InProcess {
    static SERVER: OnceLock<InProcess> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let server = runtime.block_on(async {
            let engine = Engine::new(EngineConfig::default());
            // No data directory: nothing to wait on before answering.
            let feed = EventFeed::new(engine.clone(), 64);
            // Never shutting down: the sender is dropped at once.
            let closing = tokio::sync::watch::channel(false).1;
            AllocationServiceServer::new(Service::new(engine, Arc::default(), feed, closing))
        });
        (runtime, server)
    })
}

/// A random, well-formed encoding of the message `type_name` (as the
/// descriptor names it, `.allocation.v1.Order`), driven by `entropy`:
/// every field the descriptor declares may appear, with values chosen to
/// reach the edges (empty and very long strings, zero, negative and
/// extreme numbers, unknown enum values, repeated and nested fields).
pub fn random_message(type_name: &str, entropy: &mut impl FnMut() -> u64) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(message) = message_descriptor(type_name) {
        encode_random(message, entropy, 0, &mut out);
    }
    out
}

fn message_descriptor(type_name: &str) -> Option<&'static DescriptorProto> {
    let (package, name) = type_name.trim_start_matches('.').rsplit_once('.')?;
    descriptors()
        .file
        .iter()
        .filter(|file| file.package() == package)
        .flat_map(|file| &file.message_type)
        .find(|message| message.name() == name)
}

fn encode_random(
    message: &DescriptorProto,
    entropy: &mut impl FnMut() -> u64,
    depth: usize,
    out: &mut Vec<u8>,
) {
    for field in &message.field {
        let repeats = match field.label() {
            Label::Repeated => (entropy() % 4) as usize,
            _ => usize::from(!entropy().is_multiple_of(3)),
        };
        for _ in 0..repeats {
            let number = field.number() as u64;
            match field.r#type() {
                Type::String | Type::Bytes => {
                    key(out, number, 2);
                    let text = random_text(entropy);
                    varint(out, text.len() as u64);
                    out.extend_from_slice(text.as_bytes());
                }
                Type::Message if depth < 4 => {
                    let mut nested = Vec::new();
                    if field.type_name() == ".google.protobuf.Timestamp" {
                        random_timestamp(entropy, &mut nested);
                    } else if let Some(inner) = message_descriptor(field.type_name()) {
                        encode_random(inner, entropy, depth + 1, &mut nested);
                    }
                    key(out, number, 2);
                    varint(out, nested.len() as u64);
                    out.extend_from_slice(&nested);
                }
                Type::Message => {}
                Type::Double | Type::Fixed64 | Type::Sfixed64 => {
                    key(out, number, 1);
                    out.extend_from_slice(&random_number(entropy).to_le_bytes());
                }
                Type::Float | Type::Fixed32 | Type::Sfixed32 => {
                    key(out, number, 5);
                    out.extend_from_slice(&(random_number(entropy) as u32).to_le_bytes());
                }
                _ => {
                    key(out, number, 0);
                    varint(out, random_number(entropy));
                }
            }
        }
    }
}

fn random_timestamp(entropy: &mut impl FnMut() -> u64, out: &mut Vec<u8>) {
    const SECONDS: [i64; 6] = [
        0,
        1_700_000_000,
        -62_135_596_801,
        253_402_300_800,
        i64::MAX,
        i64::MIN,
    ];
    let seconds = match entropy() % 4 {
        0 => SECONDS[(entropy() % SECONDS.len() as u64) as usize],
        _ => 1_700_000_000 + (entropy() % 10_000_000) as i64,
    };
    key(out, 1, 0);
    varint(out, seconds as u64);
    if entropy().is_multiple_of(2) {
        key(out, 2, 0);
        let nanos = [0, 999_999_999, 1_000_000_000, -1][(entropy() % 4) as usize] as i64;
        varint(out, nanos as u64);
    }
}

fn random_number(entropy: &mut impl FnMut() -> u64) -> u64 {
    const EDGES: [u64; 8] = [
        0,
        1,
        2,
        5,
        u32::MAX as u64,
        u64::MAX,
        i64::MAX as u64,
        1 << 31,
    ];
    match entropy() % 3 {
        0 => EDGES[(entropy() % EDGES.len() as u64) as usize],
        1 => entropy() % 8,
        _ => entropy(),
    }
}

fn random_text(entropy: &mut impl FnMut() -> u64) -> String {
    // Ids collide often (so orders, SKUs and FCs meet), and the edges are there.
    const WORDS: [&str; 10] = [
        "m", "o1", "sku-1", "fc-1", "", " ", "Ä\u{0}", "a/b", "DIRECT", "x",
    ];
    match entropy() % 8 {
        0 => "z".repeat((entropy() % 300) as usize),
        _ => WORDS[(entropy() % WORDS.len() as u64) as usize].to_string(),
    }
}

fn key(out: &mut Vec<u8>, number: u64, wire_type: u64) {
    varint(out, number << 3 | wire_type);
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}
