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
    let defaults = sessiond::config::Settings::defaults().login_overrides;
    let app = crate::helpers::spawn_app_with(move |s| s.login_overrides = defaults);
    let response = app.send("GET", "/openapi.json", &[], b"");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.body, sessiond::openapi::spec_json());
    // A login asks for what this server lets it: the document says so.
    let policies = |spec: &serde_json::Value| {
        spec["components"]["schemas"]["NewSessionRequest"]["properties"]["concurrent_sessions"]
            ["enum"]
            .clone()
    };
    assert_eq!(
        policies(&response.json()),
        serde_json::json!(["replace", null])
    );
    let lenient = spawn_app();
    let served = lenient.send("GET", "/openapi.json", &[], b"").json();
    assert_eq!(
        policies(&served),
        serde_json::json!(["replace", "allow", null])
    );
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

#[test]
fn every_operation_reads_as_documentation() {
    let spec: serde_json::Value = serde_json::from_str(&sessiond::openapi::spec_json()).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            for field in ["summary", "description"] {
                assert!(
                    operation[field].as_str().is_some_and(|t| t.len() > 10),
                    "{name} has no {field}"
                );
            }
            let responses = operation["responses"].as_object().unwrap();
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            if secured {
                assert!(responses.contains_key("401"), "{name} documents 401");
            }
            if operation["requestBody"].is_object() {
                for status in ["400", "413", "415"] {
                    assert!(responses.contains_key(status), "{name} documents {status}");
                }
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{name} {status} is a problem"
                    );
                }
            }
        }
    }
}

#[test]
fn the_interactive_reference_is_served_from_the_binary() {
    let app = spawn_app();
    let redirect = app.send("GET", "/docs", &[], b"");
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location"), Some("/docs/"));
    let page = app.send("GET", "/docs/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("swagger-ui"));
    for script in ["swagger-ui-bundle.js", "swagger-initializer.js"] {
        let js = app.send("GET", &format!("/docs/{script}"), &[], b"");
        assert_eq!(js.status, 200, "{script}");
    }
    let init = app
        .send("GET", "/docs/swagger-initializer.js", &[], b"")
        .body;
    assert!(init.contains("\"/openapi.json\""), "{init}");
    assert!(
        !page.body.contains("https://"),
        "nothing is loaded from elsewhere"
    );
}

/// The schema attributes spell the limits as literals (utoipa reads no constants there); the
/// document must state exactly the domain's limits.
#[test]
fn the_document_states_the_domains_limits() {
    use sessiond::domain::limits::*;
    let spec: serde_json::Value = serde_json::from_str(&sessiond::openapi::spec_json()).unwrap();
    let login = &spec["components"]["schemas"]["NewSessionRequest"]["properties"];
    for field in ["user_id", "name", "organisation", "server_name"] {
        assert_eq!(login[field]["maxLength"], MAX_TEXT_CHARS, "{field}");
    }
    for field in [
        "user_id",
        "name",
        "organisation",
        "server_name",
        "user_agent",
    ] {
        assert_eq!(
            login[field]["pattern"],
            sessiond::schema::NO_CONTROL_CHARACTERS,
            "{field}"
        );
    }
    assert_eq!(
        login["roles"]["items"]["pattern"],
        sessiond::schema::NO_CONTROL_CHARACTERS
    );
    assert_eq!(login["user_agent"]["maxLength"], MAX_USER_AGENT_CHARS);
    assert_eq!(login["roles"]["maxItems"], MAX_ROLES);
    assert_eq!(login["roles"]["items"]["maxLength"], MAX_ROLE_CHARS);
    assert_eq!(login["timeout_seconds"]["maximum"], MAX_TIMEOUT_SECONDS);
    let delete = &spec["components"]["schemas"]["DeleteSessionsRequest"]["properties"]["ids"];
    assert_eq!(delete["maxItems"], MAX_DELETE_IDS);
    for path in ["/sessions", "/audit"] {
        for param in spec["paths"][path]["get"]["parameters"].as_array().unwrap() {
            let schema = &param["schema"];
            match param["name"].as_str().unwrap() {
                "limit" => {
                    assert_eq!(schema["maximum"], MAX_LIMIT);
                    assert_eq!(schema["default"], DEFAULT_LIMIT);
                }
                "organisation" | "user_id" | "server_name" | "q" => {
                    assert_eq!(schema["maxLength"], MAX_TEXT_CHARS, "{path} {param}")
                }
                _ => {}
            }
        }
    }
}
