//! Crash safety: a process appending in a loop is killed with SIGKILL at random moments; after
//! every restart each entry it acknowledged is present and the log verifies.

mod common;

use rand::Rng;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use threatlog::node::Node;
use uuid::Uuid;

/// Kill rounds; the issue asks for at least 20.
const ROUNDS: usize = 24;

#[test]
fn acknowledged_entries_survive_sigkill() {
    let (_temp, dir) = common::node();
    let mut acknowledged: Vec<Uuid> = Vec::new();
    let mut rng = rand::thread_rng();
    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_threatlog"))
            .arg("--data")
            .arg(&dir)
            .arg("append-loop")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("append loop starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (first_ack, started) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(uuid) = line.split(' ').nth(1).and_then(|u| Uuid::parse_str(u).ok()) {
                    if acked.is_empty() {
                        let _ = first_ack.send(());
                    }
                    acked.push(uuid);
                }
            }
            acked
        });
        // Once the loop is appending (start-up time varies with machine load), let it run a
        // random while (including mid-write), then kill it without warning.
        let _ = started.recv_timeout(Duration::from_secs(60));
        let deadline = Instant::now() + Duration::from_millis(rng.gen_range(0..300));
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let acked = reader.join().expect("reader thread");
        acknowledged.extend(acked);

        let node = Node::open(&dir).expect("node reopens after SIGKILL");
        for uuid in &acknowledged {
            assert!(
                node.event_json(uuid).unwrap().is_some(),
                "round {round}: acknowledged event {uuid} is missing"
            );
        }
        let summary = node
            .store
            .verify(&|_| {})
            .expect("log verifies after SIGKILL");
        assert!(
            summary.entries as usize > acknowledged.len(),
            "round {round}"
        );
    }
    assert!(
        acknowledged.len() >= ROUNDS,
        "the loop acknowledged {} appends",
        acknowledged.len()
    );
}
