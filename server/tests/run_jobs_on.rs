//! `capstan serve --run-jobs-on NAME`: the console's runtime runs the script jobs of a
//! ZooKeeper centre and records their runs, which the runs API then shows.

#[path = "../../runtime/registry/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use capstan_server::config::ServeArgs;
use capstan_server::{build_state, router};
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let res = app.clone().oneshot(req).await.expect("response");
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_script_jobs_on_a_zookeeper_centre_it_is_told_to() {
    let zk = support::ZooKeeper::start();
    let dir = tempfile::tempdir().expect("dir");
    let args = ServeArgs {
        bind: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("data"),
        site_root: dir.path().join("site"),
        admin_password: Some("run-jobs-on-password".into()),
        zk_allow: String::new(),
        session_hours: 1,
        secure_cookies: false,
        probe_timeout_ms: 5000,
        log: "warn".into(),
        no_demo: true,
        run_jobs_on: vec!["zk".into()],
    };
    let state = build_state(&args).await.expect("state");
    let app = router(state.clone());
    let (status, login) = call(
        &app,
        "POST",
        "/api/v1/login",
        None,
        Some(json!({"username": "admin", "password": "run-jobs-on-password"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let token = login["token"].as_str().expect("token").to_owned();
    let (status, body) = call(&app, "POST", "/api/v1/registries", Some(&token), Some(json!({"name": "zk", "kind": "zookeeper", "connect": zk.connect(), "namespace": "run-on"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // What `capstan serve` does at start-up, now that the centre exists.
    capstan_server::runtimes::start(&state, &args.data_dir, &args.run_jobs_on, false, args.bind)
        .await
        .expect("runtimes");
    let (status, body) = call(
        &app,
        "POST",
        "/api/v1/registries/zk/jobs",
        Some(&token),
        Some(json!({"kind": "SCRIPT", "name": "tick", "cron": "* * * * * ?", "command": "true"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, runs) = call(
            &app,
            "GET",
            "/api/v1/runs?rc=zk&job=tick&state=SUCCEEDED",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{runs}");
        assert_eq!(runs["has_history"], true, "{runs}");
        if runs["total"].as_u64().unwrap_or(0) >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no runs recorded: {runs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, job) = call(
        &app,
        "GET",
        "/api/v1/registries/zk/jobs/tick",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(job["status"], "OK", "{job}");
    assert_eq!(job["instances"].as_array().map(Vec::len), Some(1), "{job}");
    for s in state.runtimes.all() {
        s.shutdown().await;
    }
}
