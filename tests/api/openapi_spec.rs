//! The committed OpenAPI document is the one the code generates.

use std::path::PathBuf;

use crate::helpers::spawn_app;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json")
}

/// Set `UPDATE_OPENAPI=1` to rewrite `openapi/openapi.json` after an intended change.
#[test]
fn the_committed_spec_matches_the_code() {
    let generated = sessiond::openapi::spec_json();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test --test api openapi` and commit it"
    );
}

#[test]
fn the_server_serves_the_same_spec_with_every_operation() {
    let app = spawn_app();
    let response = app.send("GET", "/openapi.json", &[], b"");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.body, sessiond::openapi::spec_json());
    let spec = response.json();
    for (path, method) in [
        ("/sessions", "post"),
        ("/sessions", "get"),
        ("/sessions", "delete"),
        ("/sessions/current", "get"),
        ("/sessions/current", "delete"),
        ("/sessions/{id}", "get"),
        ("/sessions/{id}", "delete"),
        ("/openapi.json", "get"),
    ] {
        let operation = &spec["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
    }
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["service_key"]["name"], "X-Service-Key");
}
