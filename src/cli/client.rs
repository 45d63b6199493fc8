//! Operations that work on a node whether it is stopped (directly on its data directory)
//! or running (through its admin API, at `DIR/run/api.addr` with `DIR/admin.key`).

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::path::Path;

use axum::body::Body;
use axum::http::{header, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use threatlog::api::error::ApiError;
use threatlog::api::servers::ServerOp;
use threatlog::node::{Node, NodeError};
use threatlog::store::StoreError;

/// Runs an operation on the node in `dir`: `local` on the node when it is stopped, else a
/// POST of `{wrapper: body}` to `path` of its admin API (`DIR/admin.key`,
/// `DIR/run/api.addr`). `resource` names the REST resource in errors.
fn on_node(
    dir: &Path,
    resource: &str,
    path: &str,
    wrapper: &str,
    body: Map<String, Value>,
    local: impl FnOnce(&Node, &Map<String, Value>) -> Result<Value, ApiError>,
) -> Result<Value> {
    match Node::open(dir) {
        Ok(node) => local(&node, &body)
            .map_err(|error| anyhow::anyhow!("{}", describe_failure(&error.body(resource)))),
        Err(NodeError::Store(StoreError::Busy { .. })) => {
            post_to_running_node(dir, path, serde_json::json!({ wrapper: body }))
        }
        Err(error) => Err(error).with_context(|| format!("cannot open node in {}", dir.display())),
    }
}

/// Runs a peer operation on the node in `dir`, stopped or running.
pub fn server_op(dir: &Path, op: ServerOp, id: &str, body: Map<String, Value>) -> Result<Value> {
    let path = match op {
        ServerOp::Index => "/servers/index".to_string(),
        ServerOp::Add => "/servers/add".to_string(),
        ServerOp::Edit => format!("/servers/edit/{id}"),
        ServerOp::Delete => format!("/servers/delete/{id}"),
        ServerOp::SyncNow => format!("/servers/pull/{id}"),
        ServerOp::Card => "/servers/card".to_string(),
    };
    on_node(dir, "/servers", &path, "Server", body, |node, body| {
        threatlog::api::servers::run(node, op, id, body)
    })
}

/// Runs an identity operation (`revoke`, `roster/import`, `roster/trust`) on the node in
/// `dir`, stopped or running.
pub fn identity_op(dir: &Path, op: &str, body: Map<String, Value>) -> Result<Value> {
    let path = format!("/identity/{op}");
    on_node(dir, "/identity", &path, "Identity", body, |node, body| {
        threatlog::api::identity::run(node, op, body)
    })
}

/// Posts `body` to `path` of the node running on `dir`, as its admin (`DIR/admin.key`, at
/// `DIR/run/api.addr`); a MISP error answer becomes the error.
fn post_to_running_node(dir: &Path, path: &str, body: Value) -> Result<Value> {
    let addr = std::fs::read_to_string(dir.join("run").join("api.addr"))
        .context("the node is running but DIR/run/api.addr is missing")?;
    let addr = addr.trim().trim_start_matches("http://");
    let key = std::fs::read_to_string(dir.join(threatlog::node::ADMIN_KEY_FILE))
        .context("cannot read the admin key to reach the running node")?;
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("DIR/run/api.addr holds '{addr}', not an address"))?;
    let (status, response) = post(addr, key.trim(), path, serde_json::to_vec(&body)?)?;
    let value: Value = serde_json::from_slice(&response)
        .with_context(|| format!("the node answered {status} with a body that is not JSON"))?;
    if status >= 400 {
        bail!("{}", describe_failure(&value));
    }
    Ok(value)
}

/// Longest answer of a running node the CLI reads.
const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// One POST of the JSON `body` to `path` of the REST API at `addr` (plain HTTP/1.1 on the
/// node's local listener), authenticated with `key`; returns the status and the response body.
fn post(addr: SocketAddr, key: &str, path: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>)> {
    let request = Request::post(format!("http://{addr}{path}"))
        .header(header::AUTHORIZATION, key)
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .context("building the request")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
        let response = client
            .request(request)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(Body::new(response.into_body()), RESPONSE_BYTES_MAX)
            .await
            .context("reading the node's answer")?;
        Ok((status, body.to_vec()))
    })
}

/// A MISP error body as one line: the message, then each field's errors.
fn describe_failure(body: &Value) -> String {
    let mut text = body["message"]
        .as_str()
        .unwrap_or("the node refused the request")
        .to_string();
    if let Some(errors) = body["errors"].as_object() {
        for (field, messages) in errors {
            let messages: Vec<&str> = messages
                .as_array()
                .map(|list| list.iter().filter_map(|m| m.as_str()).collect())
                .unwrap_or_default();
            text.push_str(&format!(": {field}: {}", messages.join("; ")));
        }
    }
    text
}
