//! Schemathesis, a tool that knows nothing of this code, fuzzes every operation of the served
//! OpenAPI document with all of its checks, against each store.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::SERVICE_KEY;
use crate::process::Process;
use crate::redis_server::RedisServer;

/// Examples per operation and phase; bounded so the run stays short in CI.
const MAX_EXAMPLES: &str = "40";
/// Fixed, so a failure in CI reproduces; set SESSIOND_SCHEMATHESIS_SEED to explore others.
const SEED: &str = "20261128";

fn schemathesis() -> Option<PathBuf> {
    let path = std::env::var_os("SESSIOND_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/schemathesis")
        });
    if path.exists() {
        return Some(path);
    }
    let why = "schemathesis is not installed (scripts/test installs it into target/tools)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("contract fuzzing cannot be skipped in CI: {why}");
    }
    eprintln!("\n*** SKIPPED contract fuzzing: {why} ***\n");
    None
}

fn fuzz(server: &Process) {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    let url = server.url("");
    let seed = std::env::var("SESSIOND_SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.into());
    let output = Command::new(schemathesis)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SCHEMATHESIS_HOOKS", "tests.schemathesis.hooks")
        .env("PYTHONPATH", env!("CARGO_MANIFEST_DIR"))
        .env("SESSIOND_URL", &url)
        .env("SESSIOND_SERVICE_KEY", SERVICE_KEY)
        .args(["run", &format!("{url}/openapi.json"), "--checks", "all"])
        // The event stream never ends by itself, so each call would wait out the tool's
        // timeout; tests/api/events.rs covers it (bad input included).
        .args(["--exclude-path", "/events"])
        .args([
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            &seed,
            "--no-color",
        ])
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("No issues found"), "{report}");
    let spec: serde_json::Value =
        serde_json::from_str(&sessiond::openapi::spec_json()).expect("the document is JSON");
    // Every operation but `GET /openapi.json`, the document schemathesis reads itself, and
    // the event stream.
    let operations: usize = spec["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, |ops| ops.len()))
        .sum::<usize>()
        - 2;
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "every one of the {operations} operations was tested:\n{report}"
    );
}

#[test]
fn every_operation_survives_schemathesis_on_the_memory_store() {
    fuzz(&Process::start(&[]).unwrap());
}

#[test]
fn every_operation_survives_schemathesis_on_the_redis_store() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    fuzz(&Process::start(&[("SESSIOND_STORE", &redis.url())]).unwrap());
}
