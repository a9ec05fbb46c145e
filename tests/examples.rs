//! The client examples in `examples/` run against a real server and do
//! what they say. `cargo test` builds them next to the test binaries.

mod common;

use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let deps = std::env::current_exe().unwrap();
    deps.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_example_allocates_reads_back_and_sees_the_event() {
    let server = common::start().await;
    let url = format!("http://{}", server.address);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(example("allocate"))
            .arg(url)
            .output()
            .expect("examples are built by `cargo test` (a run filtered to one test builds none: `cargo build --examples` first)")
    })
    .await
    .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // 5 mugs: fc-east has 3, so fc-west (10) ships the whole order.
    assert!(printed.contains(": Processing"), "{printed}");
    assert!(printed.contains("5 x mug from fc-west"), "{printed}");
    assert!(printed.contains("read back example-"), "{printed}");
    assert!(printed.contains("event: "), "{printed}");
}
